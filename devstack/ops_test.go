package devstack

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/gwtest"
	"github.com/chatmcp/chatmcp/internal/ops/opstest"
	"github.com/chatmcp/chatmcp/kbsclient"
	"github.com/chatmcp/chatmcp/relay/relaytest"
)

// TestMetrics runs the whole stack with Metrics on and real traffic through
// each daemon, a canary in a KBS secret (name and value), in tool
// arguments, in an unknown tool's name and in a chat message, then curls
// each daemon's /healthz, /readyz and /metrics: every expected family has
// counts, and the canary appears in none.
func TestMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	canary := opstest.Canary()
	st, err := Start(ctx, &Options{Dir: t.TempDir(), Log: testWriter{t}, Metrics: true, ApprovalTimeout: 20 * time.Second,
		Secrets: map[string][]byte{canary: []byte("value-" + canary)}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	urls := map[string]string{"kbs": st.KBSOpsURL, "gateway": st.GatewayOpsURL, "relay": st.RelayOpsURL}
	for name, u := range urls {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Fatalf("%s ops URL %q, want loopback", name, u)
		}
		if code, _ := opstest.Get(t, u+"/healthz"); code != http.StatusOK {
			t.Errorf("%s /healthz = %d", name, code)
		}
		// Start returns once every daemon serves: all are ready.
		if code, body := opstest.Get(t, u+"/readyz"); code != http.StatusOK {
			t.Errorf("%s /readyz = %d %q", name, code, body)
		}
	}

	// Key broker: a release of the canary secret to this process.
	att, err := sim.NewAttester(nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := (&kbsclient.Client{BaseURL: st.KBSURL, Attester: att}).Fetch(ctx, canary); err != nil || string(v) != "value-"+canary {
		t.Fatalf("KBS Fetch = %q, %v", v, err)
	}

	// Gateway: calls with the canary in arguments and as a tool name, and
	// a gated write approved out of band.
	m, err := st.Admin.Mint(ctx, gwclient.MintRequest{Tools: []string{"*"}, TTL: "1h", Subject: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	hc := gwtest.Client(m.Token, st.Admin.HTTP.Transport)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "ops-test"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: st.GatewayURL + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	wrote := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes_write_note", Arguments: map[string]any{"name": canary, "text": canary}})
		wrote <- err
	}()
	var held []gwclient.Approval
	for len(held) == 0 {
		if held, err = st.Admin.Approvals(ctx); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("no approval appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := st.Admin.Decide(ctx, held[0].ID, true); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes_read_note", Arguments: map[string]any{"name": canary}}); err != nil || res.IsError {
		t.Fatalf("notes_read_note: %v %v", res, err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: canary, Arguments: map[string]any{}}); err == nil {
		t.Fatal("a call of an unknown tool succeeded")
	}

	// Relay: a live watcher receives a message carrying the canary.
	ac, aw := relaytest.NewClient(t, st.RelayURL)
	bc, bw := relaytest.NewClient(t, st.RelayURL)
	if err := bc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bc.Allow(ctx, aw.Address()); err != nil {
		t.Fatal(err)
	}
	got := make(chan chat.Message, 1)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go bc.Watch(wctx, 0, func(m chat.Message) error { got <- m; return nil })
	opstest.WaitValue(t, st.RelayOpsURL, "chatmcp_relay_watchers", 1)
	if _, err := ac.SendDM(ctx, bw.Address(), "hello "+canary); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-got:
		if msg.Text != "hello "+canary {
			t.Fatalf("watched %q (err %q)", msg.Text, msg.Err)
		}
	case <-ctx.Done():
		t.Fatal("no live delivery")
	}

	want := map[string][]string{
		"kbs": {
			`chatmcp_kbs_releases_total{decision="granted"}`,
			`chatmcp_http_requests_total{code="200",route="POST /kbs/v1/attest"}`,
			"chatmcp_audit_commit_entries_count",
		},
		"gateway": {
			`chatmcp_gateway_tool_calls_total{decision="granted",tool="notes_write_note"}`,
			`chatmcp_gateway_tool_calls_total{decision="granted",tool="notes_read_note"}`,
			`chatmcp_gateway_tool_calls_total{decision="denied",tool="unknown"}`,
			`chatmcp_gateway_tool_results_total{outcome="ok",tool="notes_read_note"}`,
			`chatmcp_gateway_approval_wait_seconds_count{outcome="approved"}`,
			`chatmcp_http_requests_total{code="200",route="POST /admin/v1/tokens"}`,
			"chatmcp_audit_append_duration_seconds_count",
		},
		"relay": {
			"chatmcp_relay_messages_total",
			"chatmcp_relay_deliveries_total",
			"chatmcp_relay_watchers",
			`chatmcp_http_requests_total{code="201",route="POST /v1/messages"}`,
		},
	}
	for name, series := range want {
		t.Run(name, func(t *testing.T) {
			exp := opstest.Metrics(t, urls[name])
			opstest.Absent(t, exp, canary, m.Token)
			opstest.AtLeastOne(t, exp, series...)
		})
	}
}
