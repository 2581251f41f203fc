package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/gateway"
)

// stdioUpstreamEnv makes this test binary act as a stdio MCP server.
const stdioUpstreamEnv = "GATEWAY_TEST_STDIO_UPSTREAM"

func TestMain(m *testing.M) {
	if os.Getenv(stdioUpstreamEnv) == "1" {
		runStdioUpstream()
		return
	}
	os.Exit(m.Run())
}

// runStdioUpstream serves tools that report the process and its
// USER_KEY, and one that makes the process exit.
func runStdioUpstream() {
	s := mcp.NewServer(&mcp.Implementation{Name: "stdio-upstream"}, nil)
	obj := map[string]any{"type": "object"}
	ro := &mcp.ToolAnnotations{ReadOnlyHint: true}
	s.AddTool(&mcp.Tool{Name: "whoami", InputSchema: obj, Annotations: ro}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("pid=%d key=%s", os.Getpid(), os.Getenv("USER_KEY"))}}}, nil
	})
	s.AddTool(&mcp.Tool{Name: "crash", InputSchema: obj, Annotations: ro}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		os.Exit(3)
		return nil, nil
	})
	s.Run(context.Background(), &mcp.StdioTransport{})
}

func stdioGateway(t *testing.T, env string) *harness {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf(`
data: %s
upstreams:
  st:
    command: %s
    env:
      %s: "1"
%s`, t.TempDir(), exe, stdioUpstreamEnv, env)))
	if err != nil {
		t.Fatal(err)
	}
	att, _ := sim.NewAttester(&sim.Options{Measurement: make([]byte, sim.MeasurementSize)})
	gw, err := gateway.New(context.Background(), cfg, &gateway.Options{Attester: att, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, gw: gw}
	h.serve(t)
	return h
}

func whoami(t *testing.T, cs *mcp.ClientSession) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "st_whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %q", err, callText(res))
	}
	return callText(res)
}

// TestStdioReconnect: when a stdio upstream exits, the next call starts
// a new process.
func TestStdioReconnect(t *testing.T) {
	h := stdioGateway(t, "")
	cs := h.mustConnect(h.mint("alice", "st_*").Token, nil)
	before := whoami(t, cs)
	cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "st_crash", Arguments: map[string]any{}})
	var after string
	for i := 0; i < 50; i++ {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "st_whoami", Arguments: map[string]any{}})
		if err == nil && !res.IsError {
			after = callText(res)
			break
		}
	}
	if after == "" || after == before {
		t.Fatalf("no new process: before %q after %q", before, after)
	}
}

// TestStdioPerSessionCredentials: an upstream with a layer-2 credential
// in its environment runs one process per client session, started with
// that session's credential; the value never comes back to the client.
func TestStdioPerSessionCredentials(t *testing.T) {
	h := stdioGateway(t, "      USER_KEY: {credential: user-key}\n")
	pub := h.credentialKey(t)
	var outs []string
	for _, who := range []string{"alice", "bob"} {
		m := h.mint(who, "st_*")
		cs := h.mustConnect(m.Token, nil)
		toolNames(t, cs)
		sealed, err := credentialSeal(pub, chainID(t, m.Token), `{"user-key":"key-of-`+who+`-0123456789"}`)
		if err != nil {
			t.Fatal(err)
		}
		if code := h.postCredentials(t, m.Token, cs.ID(), sealed); code != 204 {
			t.Fatalf("credentials: %d", code)
		}
		out := whoami(t, cs)
		if strings.Contains(out, "key-of-") || !strings.Contains(out, "key=[REDACTED]") {
			t.Fatalf("%s: %q", who, out)
		}
		outs = append(outs, strings.Fields(out)[0])
	}
	if outs[0] == outs[1] {
		t.Fatalf("both sessions used one process: %v", outs)
	}
}
