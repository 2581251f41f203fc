package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/internal/gwtest"
)

// Tests of issue 10 items 1, 3 and 4 against real go-sdk servers and
// clients over loopback: cancellation and disconnects reach the upstream,
// upstream requests go to the exact calling request, deadlines, nothing an
// upstream sends before its result is lost, completions and subscriptions
// pass through filtered by the token.

// peer is an upstream with the tools these tests need.
type peer struct {
	server *mcp.Server
	http   *httptest.Server

	mu        sync.Mutex
	started   chan string // names of calls that began
	cancelled chan string // names of calls whose context ended before they did
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	p := &peer{started: make(chan string, 64), cancelled: make(chan string, 64)}
	p.server = mcp.NewServer(&mcp.Implementation{Name: "peer"}, &mcp.ServerOptions{
		CompletionHandler: func(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{"ref " + req.Params.Ref.Name + req.Params.Ref.URI}}}, nil
		},
		SubscribeHandler:   func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	ro := &mcp.ToolAnnotations{ReadOnlyHint: true}
	obj := map[string]any{"type": "object"}
	p.server.AddTool(&mcp.Tool{Name: "hang", InputSchema: obj, Annotations: ro},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p.started <- "hang"
			<-ctx.Done()
			p.cancelled <- "hang"
			return nil, ctx.Err()
		})
	p.server.AddTool(&mcp.Tool{Name: "ask", InputSchema: obj, Annotations: ro},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p.started <- "ask"
			res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "name?",
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}})
			if err != nil {
				return nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprint(res.Content["name"])}}}, nil
		})
	p.server.AddTool(&mcp.Tool{Name: "chatty", InputSchema: obj, Annotations: ro},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			// Log and progress right before the result, no pause: the
			// gateway must not drop them when the result overtakes them.
			if tok := req.Params.GetProgressToken(); tok != nil {
				req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 1, Message: "last"})
			}
			req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "warning", Data: "last words"})
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil
		})
	p.server.AddTool(&mcp.Tool{Name: "roots", InputSchema: obj, Annotations: ro},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := req.Session.ListRoots(ctx, nil)
			if err != nil {
				return nil, err
			}
			var uris []string
			for _, r := range res.Roots {
				uris = append(uris, r.URI)
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Join(uris, ",")}}}, nil
		})
	p.server.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "who"}}},
		func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{}, nil
		})
	p.server.AddResource(&mcp.Resource{Name: "watched", URI: "peer://watched"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "v"}}}, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return p.server }, nil)
	p.http = httptest.NewServer(h)
	t.Cleanup(p.http.Close)
	return p
}

// withPeer is a harness whose config adds upstream "peer", un-prefixed
// names under prefix "p_", with extra YAML lines under its block.
func withPeer(t *testing.T, extra string) (*harness, *peer) {
	p := newPeer(t)
	h := newHarness(t, hopts{upstream: func(*testUpstream) string {
		return fmt.Sprintf("  peer:\n    url: %s\n    prefix: p_\n%s", p.http.URL, extra)
	}})
	return h, p
}

func waitName(t *testing.T, ch chan string, want string, what string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("%s: got %q, want %q", what, got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing within 10s", what)
	}
}

func elicitAnswer(name string) *mcp.ClientOptions {
	return &mcp.ClientOptions{ElicitationHandler: func(_ context.Context, r *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		if strings.Contains(fmt.Sprint(r.Params.RequestedSchema), "username") {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"username": name}}, nil
		}
		return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": name}}, nil
	}}
}

// A call that hangs upstream, cancelled by its client, is cancelled
// upstream; while it hangs and after, another session's elicitation on the
// same upstream reaches that session (attributed to its own call, not
// refused as "not the only caller").
func TestCancelReachesUpstreamAndElicitationStillWorks(t *testing.T) {
	h, p := withPeer(t, "")
	a := h.mustConnect(h.mint("alice", "p_*").Token, nil)
	b := h.mustConnect(h.mint("bob", "p_*").Token, elicitAnswer("bob"))

	ctx, cancel := context.WithCancel(context.Background())
	hung := make(chan error, 1)
	go func() {
		_, err := a.CallTool(ctx, &mcp.CallToolParams{Name: "p_hang", Arguments: map[string]any{}})
		hung <- err
	}()
	waitName(t, p.started, "hang", "hang call reaching the upstream")

	// While alice's call hangs: bob's elicitation is his.
	res, err := b.CallTool(context.Background(), &mcp.CallToolParams{Name: "p_ask", Arguments: map[string]any{}})
	if err != nil || res.IsError || callText(res) != "bob" {
		t.Fatalf("elicitation during another session's call: %v %+v", err, res)
	}
	waitName(t, p.started, "ask", "ask call")

	cancel() // the go-sdk client sends notifications/cancelled
	<-hung
	waitName(t, p.cancelled, "hang", "upstream seeing the cancellation")

	res, err = b.CallTool(context.Background(), &mcp.CallToolParams{Name: "p_ask", Arguments: map[string]any{}})
	if err != nil || res.IsError || callText(res) != "bob" {
		t.Fatalf("elicitation after the cancelled call: %v %+v", err, res)
	}
}

// A client that goes away without notifications/cancelled (its HTTP
// request ends) cancels its call upstream too.
func TestDisconnectReachesUpstream(t *testing.T) {
	h, p := withPeer(t, "")
	tok := h.mint("alice", "p_*").Token
	post := func(ctx context.Context, sid, body string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", h.url+"/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		}
		return h.client.Do(req)
	}
	resp, err := post(context.Background(), "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("initialize: %v %v", err, resp)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	resp.Body.Close()
	if resp, err = post(context.Background(), sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := post(ctx, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"p_hang","arguments":{}}}`)
		if err == nil {
			bufio.NewReader(resp.Body).ReadString('\x00') // until the connection goes
			resp.Body.Close()
		}
	}()
	waitName(t, p.started, "hang", "hang call reaching the upstream")
	cancel() // the connection closes; no notifications/cancelled is sent
	<-done
	waitName(t, p.cancelled, "hang", "upstream seeing the disconnect as a cancellation")
}

// An upstream call has a deadline (call_timeout): at it the upstream is
// told to cancel and the caller gets an error saying so.
func TestCallTimeout(t *testing.T) {
	h, p := withPeer(t, "    call_timeout: 300ms\n")
	a := h.mustConnect(h.mint("alice", "p_*").Token, nil)
	res, err := a.CallTool(context.Background(), &mcp.CallToolParams{Name: "p_hang", Arguments: map[string]any{}})
	if err != nil || !res.IsError || !strings.Contains(callText(res), "call_timeout (300ms)") {
		t.Fatalf("got %v %+v, want an error result naming call_timeout", err, res)
	}
	waitName(t, p.started, "hang", "call start")
	waitName(t, p.cancelled, "hang", "upstream seeing the deadline as a cancellation")
}

// Stopping the gateway (Serve's context ends) with a call hung upstream
// returns within ShutdownTimeout and cancels the call upstream.
func TestShutdownCancelsHungCalls(t *testing.T) {
	h, p := withPeer(t, "")
	tok := h.mint("alice", "p_*").Token
	// A second listener of the same gateway, stopped by this test.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.gw.Serve(ctx, l) }()
	hc := gwtest.Client(tok, h.client.Transport)
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client"}, nil)
	a, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: "https://" + l.Addr().String() + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	go a.CallTool(context.Background(), &mcp.CallToolParams{Name: "p_hang", Arguments: map[string]any{}})
	waitName(t, p.started, "hang", "hang call reaching the upstream")
	start := time.Now()
	stop()
	<-served
	if d := time.Since(start); d > gateway.ShutdownTimeout {
		t.Fatalf("Serve returned %s after its context ended, more than %s", d, gateway.ShutdownTimeout)
	}
	waitName(t, p.cancelled, "hang", "upstream seeing the shutdown as a cancellation")
	start = time.Now()
	h.gw.Close()
	if d := time.Since(start); d > gateway.ShutdownTimeout {
		t.Fatalf("Close took %s", d)
	}
}

// A log message and a progress notification sent right before the result
// reach the caller, every time.
func TestNotificationsBeforeResultNotLost(t *testing.T) {
	h, _ := withPeer(t, "")
	logs := make(chan string, 100)
	progress := make(chan string, 100)
	a := h.mustConnect(h.mint("alice", "p_*").Token, &mcp.ClientOptions{
		LoggingMessageHandler: func(_ context.Context, r *mcp.LoggingMessageRequest) { logs <- fmt.Sprint(r.Params.Data) },
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			progress <- r.Params.Message
		},
	})
	if err := a.SetLoggingLevel(context.Background(), &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		params := &mcp.CallToolParams{Name: "p_chatty", Arguments: map[string]any{}}
		params.SetProgressToken(fmt.Sprintf("t%d", i))
		if res, err := a.CallTool(context.Background(), params); err != nil || res.IsError {
			t.Fatalf("call %d: %v %+v", i, err, res)
		}
	}
	for i := range n {
		waitName(t, logs, "last words", fmt.Sprintf("log message %d", i))
		waitName(t, progress, "last", fmt.Sprintf("progress %d", i))
	}
}

// completion/complete and resource subscriptions pass through, and a token
// that does not allow the prompt or resource gets neither.
func TestCompletionAndSubscriptionsFiltered(t *testing.T) {
	h, p := withPeer(t, "")
	updates := make(chan string, 10)
	opts := &mcp.ClientOptions{ResourceUpdatedHandler: func(_ context.Context, r *mcp.ResourceUpdatedNotificationRequest) {
		updates <- r.Params.URI
	}}
	// Updates come on the standalone stream, which mustConnect leaves off.
	hc := gwtest.Client(h.mint("alice", "p_*").Token, h.client.Transport)
	a, err := mcp.NewClient(&mcp.Implementation{Name: "test-client"}, opts).Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: h.url + "/mcp", HTTPClient: hc, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	other := make(chan string, 10)
	b := h.mustConnect(h.mint("bob", "up_*").Token, &mcp.ClientOptions{ResourceUpdatedHandler: func(_ context.Context, r *mcp.ResourceUpdatedNotificationRequest) {
		other <- r.Params.URI
	}})

	prompt := &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "p_greet"}, Argument: mcp.CompleteParamsArgument{Name: "who", Value: "a"}}
	res, err := a.Complete(context.Background(), prompt)
	if err != nil || len(res.Completion.Values) != 1 || res.Completion.Values[0] != "ref greet" {
		t.Fatalf("completion of the prompt (renamed upstream): %v %+v", err, res)
	}
	// A 2026-07-28 client (go-sdk's default, stateless) too.
	c := h.mustConnect(h.mint("carol", "p_*").Token, nil)
	if res, err := c.Complete(context.Background(), prompt); err != nil || len(res.Completion.Values) != 1 {
		t.Fatalf("completion from a 2026-07-28 client: %v %+v", err, res)
	}
	if _, err := b.Complete(context.Background(), prompt); err == nil {
		t.Fatal("completion of a prompt the token does not allow succeeded")
	}

	if err := b.Subscribe(context.Background(), &mcp.SubscribeParams{URI: "peer://watched"}); err == nil {
		t.Fatal("subscription to a resource the token does not allow succeeded")
	}
	if err := a.Subscribe(context.Background(), &mcp.SubscribeParams{URI: "peer://watched"}); err != nil {
		t.Fatal(err)
	}
	if err := p.server.ResourceUpdated(context.Background(), &mcp.ResourceUpdatedNotificationParams{URI: "peer://watched"}); err != nil {
		t.Fatal(err)
	}
	waitName(t, updates, "peer://watched", "resource update through the gateway")
	if err := a.Unsubscribe(context.Background(), &mcp.UnsubscribeParams{URI: "peer://watched"}); err != nil {
		t.Fatal(err)
	}
	select {
	case u := <-other:
		t.Fatalf("a session that may not read the resource heard of its update: %s", u)
	default:
	}
}

// An upstream's roots/list goes to the caller of the call it belongs to,
// never to another session.
func TestRootsReachTheCaller(t *testing.T) {
	h, _ := withPeer(t, "")
	client := func(name, root string) *mcp.ClientSession {
		c := mcp.NewClient(&mcp.Implementation{Name: name}, nil)
		c.AddRoots(&mcp.Root{URI: root})
		hc := gwtest.Client(h.mint(name, "p_*").Token, h.client.Transport)
		cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.url + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true},
			&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	a, b := client("alice", "file:///alice"), client("bob", "file:///bob")
	for _, c := range []struct {
		cs   *mcp.ClientSession
		want string
	}{{a, "file:///alice"}, {b, "file:///bob"}} {
		res, err := c.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "p_roots", Arguments: map[string]any{}})
		if err != nil || callText(res) != c.want {
			t.Fatalf("roots: %v %q, want %q", err, callText(res), c.want)
		}
	}
}
