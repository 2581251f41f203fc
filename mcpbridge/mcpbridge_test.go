package mcpbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type echoIn struct {
	Text string `json:"text"`
}
type echoOut struct {
	Echo string `json:"echo"`
}

// upstream is a real go-sdk MCP server over streamable HTTP that requires a
// bearer token, with a tool that elicits from the client mid-call.
func upstream(t *testing.T, token string, seen *atomic.Int32) *httptest.Server {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "v0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
		return nil, echoOut{Echo: in.Text}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "confirm", Description: "asks the user"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "ok?", RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"ok": map[string]any{"type": "boolean"}}}})
		if err != nil {
			return nil, echoOut{}, err
		}
		return nil, echoOut{Echo: res.Action}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			seen.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid token"}`)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// connect runs a bridge to endpoint with token and returns a go-sdk client
// session talking to it through pipes, as a desktop client would over stdio.
func connect(t *testing.T, endpoint, token string, after func(context.Context, string) error) (*mcp.ClientSession, chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c2bR, c2bW := io.Pipe() // client → bridge
	b2cR, b2cW := io.Pipe() // bridge → client
	local, err := (&mcp.IOTransport{Reader: c2bR, Writer: b2cW}).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, local, &Options{Endpoint: endpoint, HTTP: http.DefaultClient, Token: token, AfterInitialize: after, Logf: t.Logf})
		b2cW.Close()
	}()
	client := mcp.NewClient(&mcp.Implementation{Name: "desktop", Version: "v0"}, &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"ok": true}}, nil
		},
	})
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: b2cR, Writer: c2bW}, nil)
	if err != nil {
		return nil, done
	}
	t.Cleanup(func() { cs.Close() })
	return cs, done
}

func TestBridgeRelays(t *testing.T) {
	var refused atomic.Int32
	srv := upstream(t, "good", &refused)
	var gotSession string
	cs, _ := connect(t, srv.URL, "good", func(_ context.Context, sid string) error { gotSession = sid; return nil })
	if cs == nil {
		t.Fatal("connect failed")
	}
	if gotSession == "" {
		t.Error("AfterInitialize saw no session id")
	}
	ctx := context.Background()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 2 {
		t.Errorf("ListTools = %d tools, want 2", len(tools.Tools))
	}
	tests := []struct {
		tool, text, want string
	}{
		{"echo", "hello", `"echo":"hello"`},
		{"confirm", "", `"echo":"accept"`}, // elicitation went server → client → server
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tt.tool, Arguments: map[string]any{"text": tt.text}})
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError {
				t.Fatalf("tool error: %+v", res.Content)
			}
			got := res.Content[0].(*mcp.TextContent).Text
			if !strings.Contains(got, tt.want) {
				t.Errorf("result %s, want %s", got, tt.want)
			}
		})
	}
	if refused.Load() != 0 {
		t.Errorf("%d requests went without the token", refused.Load())
	}
}

// TestBridgeRefusals: when the session cannot start, a real MCP client
// (go-sdk) still completes initialize and sees the reason as the error of
// every request, rather than a closed connection, and Run reports
// ErrRefused once the client goes.
func TestBridgeRefusals(t *testing.T) {
	var refused atomic.Int32
	srv := upstream(t, "good", &refused)
	tests := []struct {
		name     string
		endpoint string
		token    string
		after    func(context.Context, string) error
		want     string
	}{
		{"bad token", srv.URL, "bad", nil, "gateway refused the request: 401 Unauthorized: invalid token"},
		{"after initialize fails", srv.URL, "good", func(context.Context, string) error { return errors.New("sealing credentials: no key") }, "sealing credentials: no key"},
		{"unreachable", "http://127.0.0.1:1/mcp", "good", nil, "gateway unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, done := connect(t, tt.endpoint, tt.token, tt.after)
			if cs == nil {
				t.Fatal("the client could not complete initialize; it would show only a closed connection")
			}
			if got := cs.InitializeResult(); got.ServerInfo.Name != refusalName || !strings.Contains(got.Instructions, tt.want) {
				t.Errorf("initialize result %+v %q, want the stand-in server with instructions %q", got.ServerInfo, got.Instructions, tt.want)
			}
			ctx := context.Background()
			_, err := cs.ListTools(ctx, nil)
			var je *jsonrpc.Error
			if !errors.As(err, &je) || je.Code != CodeNotConnected || !strings.Contains(je.Message, tt.want) {
				t.Errorf("tools/list error %v, want code %d naming %q", err, CodeNotConnected, tt.want)
			}
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("tools/call error %v, want %q", err, tt.want)
			}
			cs.Close()
			if err := <-done; !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want ErrRefused naming %q", err, tt.want)
			}
		})
	}
	if refused.Load() == 0 {
		t.Error("the server never saw the bad token's request")
	}
}

// TestRefuse: a real MCP client (go-sdk) talking to Refuse completes
// initialize, gets the reason as an error log message and as the error of
// every request except ping, and Refuse returns when the client goes.
func TestRefuse(t *testing.T) {
	const reason = "gateway not verified, not connecting: attestation rejected: sim: measurement not allowed"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c2bR, c2bW := io.Pipe()
	b2cR, b2cW := io.Pipe()
	local, err := (&mcp.IOTransport{Reader: c2bR, Writer: b2cW}).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		Refuse(ctx, local, reason)
		b2cW.Close()
		close(done)
	}()
	logs := make(chan string, 1)
	client := mcp.NewClient(&mcp.Implementation{Name: "desktop", Version: "v0"}, &mcp.ClientOptions{
		LoggingMessageHandler: func(_ context.Context, r *mcp.LoggingMessageRequest) {
			logs <- fmt.Sprintf("%s %v", r.Params.Level, r.Params.Data)
		},
	})
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: b2cR, Writer: c2bW}, nil)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	select {
	case got := <-logs:
		if got != "error "+reason {
			t.Errorf("log message %q, want the reason at level error", got)
		}
	case <-ctx.Done():
		t.Error("no log message")
	}
	if err := cs.Ping(ctx, nil); err != nil {
		t.Errorf("ping: %v", err)
	}
	for _, call := range []func() error{
		func() error { _, err := cs.ListTools(ctx, nil); return err },
		func() error { _, err := cs.ListResources(ctx, nil); return err },
		func() error { _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "x"}); return err },
	} {
		var je *jsonrpc.Error
		if err := call(); !errors.As(err, &je) || je.Code != CodeNotConnected || je.Message != reason {
			t.Errorf("error %v, want code %d and the reason", err, CodeNotConnected)
		}
	}
	cs.Close()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Refuse did not return after the client closed")
	}
}

func TestReadSSE(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		methods []string
		lastID  string
		wantErr bool
	}{
		{"two events", "id: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"a\"}\n\n: comment\nid: 2\ndata: {\"jsonrpc\":\"2.0\",\ndata: \"method\":\"b\"}\n\n", []string{"a", "b"}, "2", false},
		{"no final blank line", "data: {\"jsonrpc\":\"2.0\",\"method\":\"a\"}", []string{"a"}, "", false},
		{"bad json", "data: {nope\n\n", nil, "", true},
		{"oversized line", "data: " + strings.Repeat("x", MaxMessageSize+1) + "\n\n", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var methods []string
			last, err := readSSE(strings.NewReader(tt.in), func(m jsonrpc.Message) {
				methods = append(methods, m.(*jsonrpc.Request).Method)
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if strings.Join(methods, ",") != strings.Join(tt.methods, ",") || last != tt.lastID {
				t.Errorf("methods %v last %q, want %v %q", methods, last, tt.methods, tt.lastID)
			}
		})
	}
}

func FuzzReadSSE(f *testing.F) {
	f.Add("id: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"a\"}\n\n")
	f.Add("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\ndata: x\n")
	f.Fuzz(func(t *testing.T, in string) {
		n := 0
		readSSE(strings.NewReader(in), func(m jsonrpc.Message) {
			if m == nil {
				t.Fatal("nil message delivered")
			}
			n++
		})
		if n > strings.Count(in, "data") {
			t.Fatalf("%d messages from %d data lines", n, strings.Count(in, "data"))
		}
	})
}
