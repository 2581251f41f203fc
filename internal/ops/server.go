package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Paths of the ops server.
const (
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
	PathMetrics = "/metrics"
)

// readyTimeout bounds one /readyz evaluation.
const readyTimeout = 5 * time.Second

// Options configure Start.
type Options struct {
	// Listen is the TCP address to serve on. Required.
	Listen string
	// Registry is served at /metrics. If nil, /metrics answers 404.
	Registry *prometheus.Registry
	// Ready decides /readyz. If nil, ready as soon as the server serves.
	Ready *Readiness
	// Logger receives failed readiness checks (their causes stay out of
	// the response) and metric collection errors. If nil, discarded.
	Logger *slog.Logger
}

// Server is a running ops server.
type Server struct {
	ln   net.Listener
	hs   *http.Server
	err  chan error
	once sync.Once
	cerr error
}

// Start listens on o.Listen and serves, in its own goroutine:
//
//	/healthz  200 "ok" while the process serves at all (liveness)
//	/readyz   200 when every readiness check passes, else 503; one line per check
//	/metrics  the registry in the Prometheus exposition format
func Start(o *Options) (*Server, error) {
	if o == nil || o.Listen == "" {
		return nil, errors.New("ops: a listen address is required")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("ops: --metrics-listen: %w", err)
	}
	s := &Server{ln: ln, err: make(chan error, 1)}
	s.hs = &http.Server{Handler: Handler(o.Registry, o.Ready, log), ReadHeaderTimeout: 10 * time.Second}
	go func() { s.err <- s.hs.Serve(ln) }()
	return s, nil
}

// Handler returns the ops routes without a server, for embedding and tests.
// reg and ready may be nil (see Options).
func Handler(reg *prometheus.Registry, ready *Readiness, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+PathReady, func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		ok, statuses := ready.Check(ctx)
		var b strings.Builder
		for _, st := range statuses {
			if st.Err != nil {
				// The cause is logged, not served: it may name paths or
				// addresses the ops port need not show.
				log.Warn("readiness check failing", "check", st.Name, "err", st.Err)
				fmt.Fprintf(&b, "[-]%s failed\n", st.Name)
			} else {
				fmt.Fprintf(&b, "[+]%s ok\n", st.Name)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			b.WriteString("not ready\n")
		} else {
			b.WriteString("ready\n")
		}
		w.Write([]byte(b.String()))
	})
	if reg != nil {
		mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	return mux
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is http://ADDR, the base of the ops endpoints.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the server, waiting up to two seconds for requests in flight.
// It is idempotent, and a nil Server is closed.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.cerr = s.hs.Shutdown(ctx)
		if serr := <-s.err; !errors.Is(serr, http.ErrServerClosed) && s.cerr == nil {
			s.cerr = serr
		}
	})
	return s.cerr
}
