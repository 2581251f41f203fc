package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	reg := NewRegistry()
	g := NewGateway(reg)
	ready := NewReadiness("store", "upstreams")
	s, err := Start(&Options{Listen: "127.0.0.1:0", Registry: reg, Ready: ready})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if code, body := get(t, s.URL()+PathHealth); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	code, body := get(t, s.URL()+PathReady)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]store failed") || !strings.Contains(body, "[-]upstreams failed") {
		t.Errorf("/readyz before the checks are set = %d %q, want 503 naming both", code, body)
	}
	ready.Done("store")
	ready.Set(Check{Name: "upstreams", Func: func(context.Context) error { return errors.New("secret cause /data/x") }})
	code, body = get(t, s.URL()+PathReady)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "[+]store ok") || strings.Contains(body, "secret cause") {
		t.Errorf("/readyz with one failing check = %d %q, want 503, store ok, the cause not served", code, body)
	}
	ready.Done("upstreams")
	if code, body = get(t, s.URL()+PathReady); code != http.StatusOK || !strings.HasSuffix(body, "ready\n") {
		t.Errorf("/readyz when ready = %d %q, want 200", code, body)
	}

	g.ToolCall("notes_read_note", Granted)
	code, body = get(t, s.URL()+PathMetrics)
	for _, want := range []string{
		`chatmcp_gateway_tool_calls_total{decision="granted",tool="notes_read_note"} 1`,
		"chatmcp_gateway_approvals_pending 0",
		"go_goroutines",
		"process_start_time_seconds",
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestReadinessDeclare(t *testing.T) {
	r := &Readiness{}
	if ok, _ := r.Check(context.Background()); !ok {
		t.Error("empty Readiness is not ready")
	}
	r.Done("store")
	r.Declare("store", "audit")
	ok, st := r.Check(context.Background())
	if ok || len(st) != 2 || st[0].Name != "store" || st[0].Err != nil || st[1].Name != "audit" || st[1].Err == nil {
		t.Errorf("after Done(store), Declare(store, audit): ready %v, %+v; want store passing, audit failing", ok, st)
	}
	var nilR *Readiness
	nilR.Declare("x")
	nilR.Set(Check{Name: "x"})
	nilR.Done("x")
	if ok, _ := nilR.Check(context.Background()); !ok {
		t.Error("nil Readiness is not ready")
	}
}

func TestServerWithoutRegistry(t *testing.T) {
	srv := httptest.NewServer(Handler(nil, nil, nil))
	defer srv.Close()
	if code, _ := get(t, srv.URL+PathMetrics); code != http.StatusNotFound {
		t.Errorf("/metrics without a registry = %d, want 404", code)
	}
	if code, _ := get(t, srv.URL+PathReady); code != http.StatusOK {
		t.Errorf("/readyz without checks = %d, want 200", code)
	}
}

func TestStartNeedsAddress(t *testing.T) {
	if _, err := Start(&Options{}); err == nil {
		t.Error("Start without Listen succeeded")
	}
	if _, err := Start(&Options{Listen: "256.0.0.1:0"}); err == nil {
		t.Error("Start on a bad address succeeded")
	}
}

// The route label is the mux pattern, never the raw path with its ids.
func TestHTTPRouteLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewHTTP(reg)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/v1/approvals/{id}/approve", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("a"))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the wrapper: %v", err)
		}
	})
	srv := httptest.NewServer(h.Handler(mux))
	defer srv.Close()
	const id = "SECRETID-0123456789abcdef"
	resp, err := http.Post(srv.URL+"/admin/v1/approvals/"+id+"/approve", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	get(t, srv.URL+"/stream")
	get(t, srv.URL+"/nothing/"+id)

	for _, tt := range []struct {
		route, code string
	}{
		{"POST /admin/v1/approvals/{id}/approve", "204"},
		{"GET /stream", "200"},
		{routeUnmatched, "404"},
	} {
		if n := testutil.ToFloat64(h.requests.WithLabelValues(tt.route, tt.code)); n != 1 {
			t.Errorf("requests{route=%q,code=%s} = %v, want 1", tt.route, tt.code, n)
		}
	}
	if n := testutil.CollectAndCount(h.duration); n != 3 {
		t.Errorf("duration series = %d, want 3", n)
	}
	var exp bytes.Buffer
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		json.NewEncoder(&exp).Encode(mf)
	}
	if strings.Contains(exp.String(), id) {
		t.Errorf("a raw path id became a label: %s", exp.String())
	}
}

// WebSocket upgrades need Hijack through the wrapper.
func TestHTTPHijack(t *testing.T) {
	h := NewHTTP(prometheus.NewRegistry())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Error("wrapped writer is not a Hijacker")
			return
		}
		c, _, err := hj.Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: close\r\n\r\n"))
		c.Close()
	})
	// The client reads the 101 before the middleware records it, so the
	// check waits for the wrapped handler to return, not for the response.
	served := make(chan struct{}, 1)
	inner := h.Handler(mux)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r)
		served <- struct{}{}
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("the hijacking handler did not return")
	}
	if n := testutil.ToFloat64(h.requests.WithLabelValues("GET /ws", "101")); n != 1 {
		t.Errorf("hijacked request counted %v times with code 101, want 1", n)
	}
}

// Nil metric sets are off: every method is a no-op and Handler returns
// its argument.
func TestNilSetsAreOff(t *testing.T) {
	var (
		g *Gateway
		k *KBS
		r *Relay
		a *Audit
		h *HTTP
	)
	g.ToolCall("x", Granted)
	g.ToolResult("x", OK)
	g.ApprovalWaited(Approved, time.Second)
	g.SetApprovalsPending(func() int { return 1 })
	k.Release(Granted)
	r.MessageStored(2)
	r.SetWatchers(func() int { return 1 })
	a.Appended(time.Millisecond)
	a.Committed(3)
	if g.HTTPMetrics() != nil || k.HTTPMetrics() != nil || r.HTTPMetrics() != nil || g.AuditMetrics() != nil || k.AuditMetrics() != nil {
		t.Error("nil set returned non-nil subsets")
	}
	mux := http.NewServeMux()
	if got := h.Handler(mux); got != http.Handler(mux) {
		t.Error("nil HTTP wrapped the handler")
	}
}

// Label values outside the fixed words and tool-name shape are folded, so
// no client-chosen text reaches the exposition.
func TestLabelsFolded(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := NewGateway(reg)
	k := NewKBS(prometheus.NewRegistry())
	const canary = "CANARY value with spaces {\"arg\":1}"
	g.ToolCall(canary, canary)
	g.ToolCall(strings.Repeat("a", maxToolLabel+1), Denied)
	g.ToolResult("notes_read_note", canary)
	g.ApprovalWaited(canary, time.Second)
	k.Release(canary)
	for _, tt := range []struct {
		got  float64
		what string
	}{
		{testutil.ToFloat64(g.calls.WithLabelValues(Unknown, Other)), "calls{unknown,other}"},
		{testutil.ToFloat64(g.calls.WithLabelValues(Unknown, Denied)), "calls{unknown,denied}"},
		{testutil.ToFloat64(g.results.WithLabelValues("notes_read_note", Other)), "results{notes_read_note,other}"},
		{testutil.ToFloat64(k.releases.WithLabelValues(Other)), "releases{other}"},
	} {
		if tt.got != 1 {
			t.Errorf("%s = %v, want 1", tt.what, tt.got)
		}
	}
	if n := testutil.CollectAndCount(g.wait); n != 1 {
		t.Errorf("approval wait series = %d, want 1", n)
	}
}

func TestGauges(t *testing.T) {
	reg, rreg := prometheus.NewRegistry(), prometheus.NewRegistry()
	g := NewGateway(reg)
	r := NewRelay(rreg)
	g.SetApprovalsPending(func() int { return 3 })
	r.SetWatchers(func() int { return 2 })
	r.MessageStored(4)
	if err := testutil.GatherAndCompare(prometheus.Gatherers{reg, rreg}, strings.NewReader(`
# HELP chatmcp_gateway_approvals_pending Tool calls currently held for approval.
# TYPE chatmcp_gateway_approvals_pending gauge
chatmcp_gateway_approvals_pending 3
# HELP chatmcp_relay_deliveries_total Deliveries stored, one per recipient of a message.
# TYPE chatmcp_relay_deliveries_total counter
chatmcp_relay_deliveries_total 4
# HELP chatmcp_relay_messages_total Message envelopes stored.
# TYPE chatmcp_relay_messages_total counter
chatmcp_relay_messages_total 1
# HELP chatmcp_relay_watchers Live watchers (WebSocket streams) on this replica.
# TYPE chatmcp_relay_watchers gauge
chatmcp_relay_watchers 2
`), "chatmcp_gateway_approvals_pending", "chatmcp_relay_messages_total", "chatmcp_relay_deliveries_total", "chatmcp_relay_watchers"); err != nil {
		t.Error(err)
	}
}

func TestAudit(t *testing.T) {
	a := NewAudit(prometheus.NewRegistry())
	a.Appended(2 * time.Millisecond)
	a.Committed(5)
	a.Committed(1)
	if n := testutil.CollectAndCount(a.commit); n != 1 {
		t.Fatalf("commit series = %d", n)
	}
	if got := histCount(t, a.commit); got != 2 {
		t.Errorf("commit observations = %d, want 2", got)
	}
	if got := histCount(t, a.append); got != 1 {
		t.Errorf("append observations = %d, want 1", got)
	}
}

func histCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather: %v", err)
	}
	return mfs[0].GetMetric()[0].GetHistogram().GetSampleCount()
}

func TestFlagsAndLogger(t *testing.T) {
	var f Flags
	fs := flag.NewFlagSet("d", flag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse([]string{"--metrics-listen", "127.0.0.1:9100", "--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Flags{MetricsListen: "127.0.0.1:9100", LogFormat: "json"}, f); diff != "" {
		t.Fatalf("flags (-want +got):\n%s", diff)
	}
	var buf bytes.Buffer
	log, err := f.Logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "hello" || rec["k"] != "v" {
		t.Errorf("json log line %q: %v", buf.String(), err)
	}
	buf.Reset()
	if log, err = NewLogger(&buf, "", nil); err != nil {
		t.Fatal(err)
	}
	log.Info("hello")
	if !strings.Contains(buf.String(), "msg=hello") {
		t.Errorf("text log line %q", buf.String())
	}
	if _, err := NewLogger(&buf, "xml", nil); err == nil || !strings.Contains(err.Error(), "text or json") {
		t.Errorf("NewLogger(xml) error = %v", err)
	}
}
