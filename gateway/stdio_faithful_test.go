package gateway_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Over stdio (one stream for everything) what an upstream sends during a
// call still reaches its caller: log messages right before the result,
// progress, and elicitation (go-sdk's conformance server as the upstream,
// on 2025-11-25: on 2026-07-28 it asks for input with input_required
// results instead of requests).
func TestStdioAttribution(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "everything-server")
	build := exec.Command("go", "build", "-o", bin, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building go-sdk's everything-server: %v\n%s", err, out)
	}
	h := newHarness(t, hopts{
		policy: "permit (principal, action, resource);\n",
		upstream: func(*testUpstream) string {
			return fmt.Sprintf("  ev:\n    command: %s\n    prefix: e_\n    protocol_version: 2025-11-25\n", bin)
		},
	})
	logs, progress := make(chan string, 100), make(chan string, 100)
	opts := elicitAnswer("stdio-user")
	opts.LoggingMessageHandler = func(_ context.Context, r *mcp.LoggingMessageRequest) { logs <- fmt.Sprint(r.Params.Data) }
	opts.ProgressNotificationHandler = func(_ context.Context, r *mcp.ProgressNotificationClientRequest) { progress <- r.Params.Message }
	a := h.mustConnect(h.mint("alice", "e_*").Token, opts)
	if err := a.SetLoggingLevel(context.Background(), &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		res, err := a.CallTool(context.Background(), &mcp.CallToolParams{Name: "e_test_tool_with_logging", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			t.Fatalf("call %d: %v %+v", i, err, res)
		}
		for _, want := range []string{"Tool execution started", "Tool processing data", "Tool execution completed"} {
			waitName(t, logs, want, fmt.Sprintf("call %d log", i))
		}
	}
	params := &mcp.CallToolParams{Name: "e_test_tool_with_progress", Arguments: map[string]any{}}
	params.SetProgressToken("mine")
	// The upstream sees the gateway's own progress token (and echoes it).
	if res, err := a.CallTool(context.Background(), params); err != nil || !strings.HasPrefix(callText(res), "chatmcp-") {
		t.Fatalf("progress call: %v %+v", err, res)
	}
	for _, want := range []string{"Completed step 0 of 100", "Completed step 50 of 100", "Completed step 100 of 100"} {
		waitName(t, progress, want, "progress")
	}
	res, err := a.CallTool(context.Background(), &mcp.CallToolParams{Name: "e_test_elicitation", Arguments: map[string]any{"message": "name?"}})
	if err != nil || !strings.Contains(callText(res), "username:stdio-user") {
		t.Fatalf("elicitation over stdio: %v %q", err, callText(res))
	}
}
