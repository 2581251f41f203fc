package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/gateway/daemon"
	"github.com/chatmcp/chatmcp/internal/gwtest"
	"github.com/chatmcp/chatmcp/internal/ops/opstest"
)

// TestRunMetrics runs chatmcp-gateway with --metrics-listen and
// --log-format json in front of an upstream that holds the connection
// until released: /readyz answers 503 while the gateway connects and 200
// once it serves. Then real traffic, with a canary in a tool argument, in
// an unknown tool's name, in a refused bearer token and in the body of an
// unauthenticated request: the metric families are there with counts, the
// canary is not.
func TestRunMetrics(t *testing.T) {
	const opsCanary = "opscanary7d41f0e2"
	up := newUpstream(t)
	release := make(chan struct{})
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up.server }, nil)
	held := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		mcpHandler.ServeHTTP(w, r)
	}))
	defer held.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gw.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata: %s\napproval_timeout: 20s\nupstreams:\n  up:\n    url: %s\n", filepath.Join(dir, "data"), held.URL)), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- exitErr(daemon.Main(ctx, []string{"--config", cfg, "--dev", "--metrics-listen", "127.0.0.1:0", "--log-format", "json"}, pw, daemon.Deps{}))
		pw.Close()
	}()
	opsc, servingc := make(chan string, 1), make(chan string, 1)
	var jsonLines, otherLines int
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		re := regexp.MustCompile(`metrics on (http://\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			if m := re.FindStringSubmatch(line); m != nil {
				opsc <- m[1]
				continue
			}
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil {
				jsonLines++
				if rec["msg"] == "chatmcp-gateway serving" {
					servingc <- rec["addr"].(string)
				}
			} else if strings.HasPrefix(line, "time=") {
				otherLines++ // a text-format log line
			}
		}
	}()
	var opsURL string
	select {
	case opsURL = <-opsc:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	if code, body := opstest.Get(t, opsURL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while starting = %d %q, want 200", code, body)
	}
	if code, body := opstest.Get(t, opsURL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]upstreams failed") {
		t.Errorf("/readyz while the upstream is held = %d %q, want 503 naming upstreams", code, body)
	}
	close(release)
	var addr string
	select {
	case addr = <-servingc:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway did not log that it serves")
	}
	opstest.Ready(t, opsURL, gateway.ReadinessChecks()...)

	// Traffic.
	base := "https://" + addr
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	adminDo := func(method, path string, body any, out any) int {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	var minted gateway.MintResponse
	if code := adminDo("POST", "/admin/v1/tokens", gateway.MintRequest{Tools: []string{"up_*"}, Subject: "ops", TTL: "1h"}, &minted); code != http.StatusOK {
		t.Fatalf("mint: %d", code)
	}
	mc := mcp.NewClient(&mcp.Implementation{Name: "ops-test"}, nil)
	cs, err := mc.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + gateway.PathMCP,
		HTTPClient: gwtest.Client(minted.Token, hc.Transport), MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_echo", Arguments: map[string]any{"text": opsCanary}}); err != nil || res.IsError {
		t.Fatalf("up_echo: %v %v", res, err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_" + opsCanary, Arguments: map[string]any{}}); err == nil {
		t.Fatal("a call of an unknown tool succeeded")
	}
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_fail", Arguments: map[string]any{"text": opsCanary}}); err != nil || !res.IsError {
		t.Fatalf("up_fail: %v %v, want a tool error", res, err)
	}
	// A gated call: pending while held, then approved.
	wrote := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_write", Arguments: map[string]any{"text": opsCanary}})
		wrote <- err
	}()
	var id string
	deadline := time.Now().Add(10 * time.Second)
	for id == "" {
		var list []map[string]any
		adminDo("GET", "/admin/v1/approvals", nil, &list)
		if len(list) > 0 {
			id, _ = list[0]["id"].(string)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no approval appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, exp := opstest.Get(t, opsURL+"/metrics")
	if v := opstest.Value(exp, "chatmcp_gateway_approvals_pending"); v != 1 {
		t.Errorf("chatmcp_gateway_approvals_pending while held = %v, want 1", v)
	}
	if code := adminDo("POST", "/admin/v1/approvals/"+id+"/approve", nil, nil); code != http.StatusNoContent {
		t.Fatalf("approve: %d", code)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	// Refused at the HTTP edge, with the canary as token and as body.
	req, _ := http.NewRequest("POST", base+gateway.PathMCP, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+opsCanary+`"}}`))
	req.Header.Set("Authorization", "Bearer "+opsCanary)
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST /mcp with a bad token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	exp = opstest.Metrics(t, opsURL)
	opstest.Absent(t, exp, opsCanary, canary, minted.Token, id)
	opstest.AtLeastOne(t, exp,
		`chatmcp_gateway_tool_calls_total{decision="granted",tool="up_echo"}`,
		`chatmcp_gateway_tool_calls_total{decision="denied",tool="unknown"}`,
		`chatmcp_gateway_tool_calls_total{decision="granted",tool="up_write"}`,
		`chatmcp_gateway_tool_results_total{outcome="ok",tool="up_echo"}`,
		`chatmcp_gateway_tool_results_total{outcome="error",tool="up_fail"}`,
		`chatmcp_gateway_approval_wait_seconds_count{outcome="approved"}`,
		`chatmcp_http_requests_total{code="200",route="POST /admin/v1/tokens"}`,
		`chatmcp_http_requests_total{code="204",route="POST /admin/v1/approvals/{id}/approve"}`,
		`chatmcp_http_requests_total{code="401",route="/mcp"}`,
		`chatmcp_audit_append_duration_seconds_count`,
		`chatmcp_audit_commit_entries_count`,
	)
	if v := opstest.Value(exp, "chatmcp_gateway_approvals_pending"); v != 0 {
		t.Errorf("chatmcp_gateway_approvals_pending after the decision = %v, want 0", v)
	}
	cs.Close()
	hc.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
	<-scanned
	if jsonLines == 0 || otherLines != 0 {
		t.Errorf("--log-format json: %d JSON lines, %d text lines", jsonLines, otherLines)
	}
}
