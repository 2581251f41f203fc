package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/internal/npmdeps"
)

// npmServer returns the entry point of an npm MCP server from
// e2e/node_modules, installing e2e's locked npm packages first when they are
// missing (node and npm are required, not optional).
func npmServer(t *testing.T, pkg string) string {
	t.Helper()
	p := filepath.Join(npmdeps.Require(t), "@modelcontextprotocol", pkg, "dist", "index.js")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not in e2e/package-lock.json: %v", pkg, err)
	}
	return p
}

// TestStdioUpstreams runs the real filesystem and everything servers from
// npm as stdio upstreams behind the gateway.
func TestStdioUpstreams(t *testing.T) {
	fsMain := npmServer(t, "server-filesystem")
	evMain := npmServer(t, "server-everything")
	files := t.TempDir()
	if err := os.WriteFile(filepath.Join(files, "hello.txt"), []byte("hello from the gateway test"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf(`
data: %s
kbs: http://127.0.0.1:1
approval_timeout: 300ms
upstreams:
  fs:
    command: node
    args: [%s, %s]
  everything:
    command: node
    args: [%s]
    env:
      API_KEY: {secret: api-key}
`, t.TempDir(), fsMain, files, evMain)))
	if err != nil {
		t.Fatal(err)
	}
	att, _ := sim.NewAttester(&sim.Options{Measurement: make([]byte, sim.MeasurementSize)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gw, err := gateway.New(ctx, cfg, &gateway.Options{Attester: att, Secrets: staticSecrets{"api-key": []byte(canary)},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	names := strings.Join(gw.ToolNames(), ",")
	for _, want := range []string{"fs_read_text_file", "fs_write_file", "everything_echo"} {
		if !strings.Contains(names, want) {
			t.Fatalf("tools %s lack %s", names, want)
		}
	}
	h := &harness{t: t, gw: gw}
	h.serve(t)
	cs := h.mustConnect(h.mint("alice", "fs_read_*", "fs_write_file", "everything_echo").Token, nil)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "fs_read_text_file", Arguments: map[string]any{"path": filepath.Join(files, "hello.txt")}})
	if err != nil || res.IsError || !strings.Contains(callText(res), "hello from the gateway test") {
		t.Fatalf("read: %v %q", err, callText(res))
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "everything_echo", Arguments: map[string]any{"message": "hi " + canary}})
	if err != nil || res.IsError || strings.Contains(callText(res), canary) {
		t.Fatalf("echo: %v %q", err, callText(res))
	}
	// write_file is not read-only: held, then timed out, never written.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "fs_write_file", Arguments: map[string]any{"path": filepath.Join(files, "x.txt"), "content": "x"}})
	if err != nil || !res.IsError || !strings.Contains(callText(res), "timed out") {
		t.Fatalf("write: %v %q", err, callText(res))
	}
	if _, err := os.Stat(filepath.Join(files, "x.txt")); err == nil {
		t.Fatal("the upstream wrote the file although the call timed out")
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "fs_list_directory", Arguments: map[string]any{"path": files}}); err == nil {
		t.Fatal("a tool outside the token's globs was called")
	}
}
