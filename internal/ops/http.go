package ops

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// routeUnmatched labels requests no route pattern matched.
const routeUnmatched = "unmatched"

// HTTP records requests per route: chatmcp_http_requests_total{route,code}
// and chatmcp_http_request_duration_seconds{route}. A nil *HTTP records
// nothing.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTP registers the HTTP metrics with reg.
func NewHTTP(reg prometheus.Registerer) *HTTP {
	h := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatmcp_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chatmcp_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern (long-lived streams count until they end).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	reg.MustRegister(h.requests, h.duration)
	return h
}

// Handler wraps next, which must be (or pass the same *http.Request on to)
// an *http.ServeMux: the route label is the pattern the mux matched
// (r.Pattern, such as "POST /admin/v1/approvals/{id}/approve"), never the
// raw path, so ids and names in paths do not become labels. Requests no
// pattern matched count as "unmatched". A nil *HTTP returns next.
func (h *HTTP) Handler(next http.Handler) http.Handler {
	if h == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w}
		defer func() {
			route := r.Pattern
			if route == "" {
				route = routeUnmatched
			}
			code := rw.code
			if code == 0 {
				code = http.StatusOK
			}
			h.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			h.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rw, r)
	})
}

// statusWriter remembers the status code. It passes Flush and Hijack on
// (streamable MCP responses and WebSocket watchers need them) and unwraps
// for http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
