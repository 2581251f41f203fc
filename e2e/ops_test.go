package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/internal/ops/opstest"
	"github.com/chatmcp/chatmcp/relay/relaytest"
)

// TestOpsEndpoints curls /healthz, /readyz and /metrics of the stack's
// three daemons after real traffic: tool calls through chatmcp connect and
// the inspector with a canary in an argument and in an unknown tool's
// name, a chat message carrying it, and the layer-1 secret (the fixture's
// canary) the gateway fetched from the key broker. Every expected family
// has counts; neither canary appears.
func TestOpsEndpoints(t *testing.T) {
	f := setup(t)
	argCanary := opstest.Canary()
	_, tok := f.mint(t, "everything_echo,fs_read_text_file", "--subject", "ops-test")
	if text, isErr := toolText(t, f.callTool(t, tok, "everything_echo", "message="+argCanary)); isErr || !strings.Contains(text, argCanary) {
		t.Fatalf("everything_echo: error=%v %q", isErr, text)
	}
	if _, isErr := toolText(t, f.callTool(t, tok, "fs_"+argCanary)); !isErr {
		t.Fatal("a call of an unknown tool succeeded")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ac, aw := relaytest.NewClient(t, f.st.RelayURL)
	bc, bw := relaytest.NewClient(t, f.st.RelayURL)
	if err := bc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bc.Allow(ctx, aw.Address()); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.SendDM(ctx, bw.Address(), "hello "+argCanary); err != nil {
		t.Fatal(err)
	}

	daemons := []struct {
		name, url string
		checks    []string
		series    []string
	}{
		{"kbs", f.st.KBSOpsURL, []string{"store", "sealer", "audit"}, []string{
			`chatmcp_kbs_releases_total{decision="granted"}`,
			`chatmcp_http_requests_total{code="200",route="POST /kbs/v1/attest"}`,
			"chatmcp_audit_commit_entries_count",
		}},
		{"gateway", f.st.GatewayOpsURL, []string{"store", "kbs_secrets", "upstreams"}, []string{
			`chatmcp_gateway_tool_calls_total{decision="granted",tool="everything_echo"}`,
			`chatmcp_gateway_tool_calls_total{decision="denied",tool="unknown"}`,
			`chatmcp_gateway_tool_results_total{outcome="ok",tool="everything_echo"}`,
			`chatmcp_http_requests_total{code="200",route="POST /admin/v1/tokens"}`,
			"chatmcp_http_request_duration_seconds_count{route=\"/mcp\"}",
			"chatmcp_audit_append_duration_seconds_count",
		}},
		{"relay", f.st.RelayOpsURL, []string{"store", "fanout"}, []string{
			"chatmcp_relay_messages_total",
			"chatmcp_relay_deliveries_total",
			`chatmcp_http_requests_total{code="201",route="POST /v1/messages"}`,
		}},
	}
	for _, d := range daemons {
		t.Run(d.name, func(t *testing.T) {
			if code, _ := opstest.Get(t, d.url+"/healthz"); code != http.StatusOK {
				t.Errorf("/healthz = %d", code)
			}
			opstest.Ready(t, d.url, d.checks...)
			exp := opstest.Metrics(t, d.url)
			opstest.Absent(t, exp, f.canary, argCanary, tok)
			opstest.AtLeastOne(t, exp, d.series...)
		})
	}
}
