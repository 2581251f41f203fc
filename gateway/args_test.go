package gateway_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/gateway"
)

// rawRecorder is an upstream tool that records the arguments exactly as
// the bytes reached the upstream.
type rawRecorder struct {
	mu  sync.Mutex
	raw []string
}

func (r *rawRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.raw)
}

// addRawTool adds the read-only tool "read" to the upstream and waits until
// the gateway exposes it as up_read.
func addRawTool(t *testing.T, h *harness) *rawRecorder {
	t.Helper()
	rec := &rawRecorder{}
	obj := map[string]any{"type": "object"}
	h.up.server.AddTool(&mcp.Tool{Name: "read", Description: "reads a file", InputSchema: obj, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			rec.mu.Lock()
			rec.raw = append(rec.raw, string(req.Params.Arguments))
			rec.mu.Unlock()
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "read"}}}, nil
		})
	waitExposed(t, h, "up_read")
	return rec
}

// waitExposed waits until the gateway lists name among its enabled tools.
func waitExposed(t *testing.T, h *harness, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var info gateway.Info
		h.admin("GET", "/admin/v1/info", nil, &info)
		if slices.Contains(info.Tools, name) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway never exposed %s: %v", name, info.Tools)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestArgumentsParserDifferential replays issue 8 finding 5: a token allows
// only paths under /tmp; the client repeats the key so that encoding/json
// (last value wins) authorizes /tmp/ok while an upstream whose parser keeps
// the first value would read /etc/passwd. The gateway must refuse input
// parsers can read two ways, and forward exactly the canonical encoding of
// the value it authorized.
func TestArgumentsParserDifferential(t *testing.T) {
	h := newHarness(t, hopts{})
	rec := addRawTool(t, h)
	parent := h.mint("alice", "up_read")
	child, err := captoken.Attenuate(parent.Token, captoken.Caveat{
		Args: []captoken.ArgConstraint{{Tool: "up_read", Arg: "path", Values: []string{"/tmp/*"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cs := h.mustConnect(child, nil)
	refused := []struct{ name, args, want string }{
		{"duplicate key, last value allowed", `{"path":"/etc/passwd","path":"/tmp/ok"}`, `duplicate key at "/path"`},
		{"duplicate key spelled with an escape", `{"path":"/etc/passwd","p\u0061th":"/tmp/ok"}`, `duplicate key at "/path"`},
		{"nested duplicate key", `{"path":"/tmp/ok","opts":{"mode":"r","mode":"w"}}`, `duplicate key at "/opts/mode"`},
		{"invalid UTF-8", "{\"path\":\"/tmp/ok\xff\"}", "valid UTF-8"},
		{"lone surrogate escape", `{"path":"/tmp/ok\ud800"}`, "valid UTF-8"},
		{"not an object", `["/tmp/ok"]`, "arguments must be a JSON object"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_read", Arguments: json.RawMessage(c.args)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want a refusal naming %q", err, c.want)
			}
		})
	}
	if got := rec.got(); len(got) != 0 {
		t.Fatalf("the upstream received refused calls: %q", got)
	}

	// An accepted call reaches the upstream as the canonical encoding of
	// what was authorized: keys sorted, white space dropped, numbers as
	// written, escapes resolved.
	in := `{ "z": 1.50, "path": "/tmp/\u006fk", "a": {"y": [1, 2], "x": "\u00e9"} }`
	want := `{"a":{"x":"é","y":[1,2]},"path":"/tmp/ok","z":1.50}`
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_read", Arguments: json.RawMessage(in)})
	if err != nil || res.IsError {
		t.Fatalf("permitted call: %v %v", res, err)
	}
	if got := rec.got(); len(got) != 1 || got[0] != want {
		t.Fatalf("upstream received %q, want exactly %q", got, want)
	}
}
