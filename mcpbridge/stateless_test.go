package mcpbridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestBridgeStateless: a desktop client of MCP 2026-07-28 (go-sdk's
// default) reaches a server that serves both generations through the
// bridge statelessly: BeforeStateless runs once with the version before
// anything is relayed, every request carries the matching
// MCP-Protocol-Version header and no session, and a 2025-11-25 client of
// the same bridge code still initializes a session.
func TestBridgeStateless(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "v0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
		return nil, echoOut{Echo: in.Text}, nil
	})
	get := func(*http.Request) *mcp.Server { return s }
	stateful := mcp.NewStreamableHTTPHandler(get, nil)
	stateless := mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{Stateless: true})
	var mu sync.Mutex
	var headers []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Get("Mcp-Protocol-Version")+"|"+r.Header.Get("Mcp-Session-Id"))
		mu.Unlock()
		if r.Header.Get("Mcp-Session-Id") == "" && r.Header.Get("Mcp-Protocol-Version") >= ProtocolStateless {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	for _, version := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(version, func(t *testing.T) {
			mu.Lock()
			headers = nil
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			local, desktop, closeLocal := pipes(t, ctx)
			var hooks []string
			ran := make(chan struct{})
			defer func() { cancel(); <-ran }() // no log after the test
			go func() {
				defer close(ran)
				Run(ctx, local, &Options{Endpoint: srv.URL, HTTP: http.DefaultClient, Logf: t.Logf,
					AfterInitialize: func(_ context.Context, sid string) error { hooks = append(hooks, "init:"+sid); return nil },
					BeforeStateless: func(_ context.Context, v string) error { hooks = append(hooks, "stateless:"+v); return nil }})
				closeLocal()
			}()
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "desktop"}, nil).Connect(ctx, desktop,
				&mcp.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Fatalf("negotiated %q, want %q", got, version)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
			if err != nil || res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, `"echo":"hi"`) {
				t.Fatalf("call: %v %+v", err, res)
			}
			if version == "2026-07-28" {
				if len(hooks) != 1 || hooks[0] != "stateless:2026-07-28" {
					t.Fatalf("hooks %v, want BeforeStateless once", hooks)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, h := range headers {
					if h != "2026-07-28|" {
						t.Fatalf("request headers %q: want the stateless version and no session", h)
					}
				}
				return
			}
			if len(hooks) != 1 || !strings.HasPrefix(hooks[0], "init:") || hooks[0] == "init:" {
				t.Fatalf("hooks %v, want AfterInitialize with a session", hooks)
			}
		})
	}
}

// FuzzStatelessVersion: the bridge reads the version and the name of
// every request of the local client; no params crash it, and a version it
// reports is one of the stateless protocol.
func FuzzStatelessVersion(f *testing.F) {
	f.Add("tools/call", []byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"name":"echo"}`))
	f.Add("resources/read", []byte(`{"_meta":{"io.modelcontextprotocol/protocolVersion":1},"uri":"file:///x"}`))
	f.Add("prompts/get", []byte(`{"_meta":null,"name":7}`))
	f.Add("ping", []byte(`[`))
	f.Fuzz(func(t *testing.T, method string, params []byte) {
		r := &jsonrpc.Request{Method: method, Params: params}
		if v := statelessVersion(r); v != "" && v < ProtocolStateless {
			t.Fatalf("version %q reported as stateless", v)
		}
		requestName(r)
	})
}
