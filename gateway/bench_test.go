package gateway_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/internal/gwtest"
)

// BenchmarkToolsCall measures tools/call against one streamable-HTTP
// upstream reached directly, through a bare httputil.ReverseProxy, and
// through the gateway (TLS, capability token, Cedar policy, pins and a
// fsync'd audit log on), at 1 and 8 concurrent sessions. It reports p50
// and p99 latency and calls per second; compare the three in one run.
func BenchmarkToolsCall(b *testing.B) {
	up := mcp.NewServer(&mcp.Implementation{Name: "bench-upstream"}, nil)
	up.AddTool(&mcp.Tool{Name: "echo", InputSchema: map[string]any{"type": "object"}, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
		})
	upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	// Cleanups run last-in first-out: the gateways (registered later) close
	// their upstream streams before these servers wait for them.
	b.Cleanup(upSrv.Close)
	target, _ := url.Parse(upSrv.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	proxy := httptest.NewServer(rp)
	b.Cleanup(proxy.Close)

	cfg := cfg2(b, upSrv.URL)
	gwURL, token := benchGateway(b, cfg, nil)
	memURL, memToken := benchGateway(b, cfg2(b, upSrv.URL), memAudit{})

	targets := []struct {
		name, endpoint, tool string
		hc                   *http.Client
	}{
		{"direct", upSrv.URL, "echo", &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}},
		{"reverseproxy", proxy.URL, "echo", &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}},
		{"gateway", gwURL + "/mcp", "up_echo", gwtest.Client(token, &http.Transport{MaxIdleConnsPerHost: 64, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}})},
		{"gateway-memaudit", memURL + "/mcp", "up_echo", gwtest.Client(memToken, &http.Transport{MaxIdleConnsPerHost: 64, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}})},
	}
	for _, sessions := range []int{1, 8} {
		for _, tg := range targets {
			b.Run(fmt.Sprintf("%s/sessions=%d", tg.name, sessions), func(b *testing.B) {
				css := make([]*mcp.ClientSession, sessions)
				for i := range css {
					c := mcp.NewClient(&mcp.Implementation{Name: "bench"}, nil)
					// One protocol on every path (the upstream is a session
					// server): 2025-11-25.
					cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: tg.endpoint, HTTPClient: tg.hc, DisableStandaloneSSE: true},
						&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
					if err != nil {
						b.Fatal(err)
					}
					defer cs.Close()
					css[i] = cs
				}
				lat := make([][]time.Duration, sessions)
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for i, cs := range css {
					n := b.N / sessions
					if i < b.N%sessions {
						n++
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						for j := 0; j < n; j++ {
							t0 := time.Now()
							if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tg.tool, Arguments: map[string]any{}}); err != nil {
								b.Error(err)
								return
							}
							lat[i] = append(lat[i], time.Since(t0))
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				var all []time.Duration
				for _, l := range lat {
					all = append(all, l...)
				}
				sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
				if len(all) > 0 {
					b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
					b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
				}
			})
		}
	}
}

// memAudit is an in-memory audit sink: the benchmark variant that
// separates the cost of the gateway's checks from the audit fsync.
type memAudit struct{}

func (memAudit) Append(context.Context, audit.Entry) error { return nil }

func cfg2(b *testing.B, upURL string) *gateway.Config {
	dir := b.TempDir()
	os.WriteFile(dir+"/policy.cedar", []byte(`permit (principal, action == Action::"call", resource);`), 0o600)
	cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf("data: %s\npolicy: %s/policy.cedar\nupstreams:\n  up:\n    url: %s\n", dir, dir, upURL)))
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

// benchGateway starts a gateway and mints a token for every tool.
func benchGateway(b *testing.B, cfg *gateway.Config, al gateway.AuditLog) (string, string) {
	att, _ := sim.NewAttester(&sim.Options{Measurement: make([]byte, sim.MeasurementSize)})
	opts := &gateway.Options{Attester: att, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if al != nil {
		opts.Audit = al
	}
	gw, err := gateway.New(context.Background(), cfg, opts)
	if err != nil {
		b.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { gw.Serve(ctx, l); close(done) }()
	b.Cleanup(func() { cancel(); <-done; gw.Close() })
	h := &harness{gw: gw, url: "https://" + l.Addr().String(), t: &testing.T{},
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	return h.url, h.mintB(b)
}

func (h *harness) mintB(b *testing.B) string {
	b.Helper()
	var m gateway.MintResponse
	if code := h.admin("POST", "/admin/v1/tokens", gateway.MintRequest{Tools: []string{"*"}, Subject: "bench"}, &m); code != 200 {
		b.Fatalf("mint: %d", code)
	}
	return m.Token
}
