package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/gateway/credential"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/gwtest"
	"github.com/chatmcp/chatmcp/mcpbridge"
)

// connectVersion opens a go-sdk client through the gateway speaking MCP
// revision version: "2026-07-28" is the stateless protocol (server/discover,
// per-request _meta, no Mcp-Session-Id), older ones initialize a session.
func (h *harness) connectVersion(t *testing.T, token, version string, copts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	t.Helper()
	hc := gwtest.Client(token, h.client.Transport)
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client-" + version}, copts)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.url + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true},
		&mcp.ClientSessionOptions{ProtocolVersion: version})
	if err == nil {
		t.Cleanup(func() { cs.Close() })
	}
	return cs, err
}

// elicitRecorder is a client's elicitation handler that keeps every form
// it is shown and answers accept: what a client does that cannot approve.
type elicitRecorder struct {
	mu    sync.Mutex
	forms []string
}

func (e *elicitRecorder) handle(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	e.mu.Lock()
	e.forms = append(e.forms, req.Params.Message)
	e.mu.Unlock()
	return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}, nil
}

func (e *elicitRecorder) seen() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.forms...)
}

// TestProtocolVersions runs the gateway's guarantees for a 2026-07-28
// client and for 2025-11-25 and 2025-06-18 clients against one gateway:
// the version each gets, a refused token, a call outside the token, a
// redacted result, a gated call that waits for the admin (the client
// learns the approval id: by an input_required round for the stateless
// client, by an elicitation form for the older ones; its own answer
// approves nothing), and the audit log recording all of it.
func TestProtocolVersions(t *testing.T) {
	h := newHarness(t, hopts{})
	for _, version := range []string{"2026-07-28", "2025-11-25", "2025-06-18"} {
		t.Run(version, func(t *testing.T) {
			subject := "user-" + version
			tok := h.mint(subject, "up_echo", "up_leak", "up_write").Token

			if _, err := h.connectVersion(t, "not-a-token", version, nil); err == nil {
				t.Fatal("a client with a malformed token connected")
			}

			rec := &elicitRecorder{}
			cs, err := h.connectVersion(t, tok, version, &mcp.ClientOptions{ElicitationHandler: rec.handle})
			if err != nil {
				t.Fatal(err)
			}
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Fatalf("negotiated %q, want %q", got, version)
			}
			if stateless := cs.ID() == ""; stateless != (version == "2026-07-28") {
				t.Fatalf("session id %q for %s", cs.ID(), version)
			}

			if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_fail", Arguments: map[string]any{}}); err == nil || !strings.Contains(err.Error(), "not permitted by your token") {
				t.Fatalf("call outside the token: %v", err)
			}

			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_leak", Arguments: map[string]any{}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(res)
			if bytes.Contains(b, []byte(canary)) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString([]byte(canary)))) || !bytes.Contains(b, []byte("[REDACTED]")) {
				t.Fatalf("result not redacted: %s", b)
			}

			before := len(h.up.called())
			done := make(chan *mcp.CallToolResult, 1)
			errc := make(chan error, 1)
			go func() {
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_write", Arguments: map[string]any{"text": version}})
				errc <- err
				done <- res
			}()
			var id string
			for _, a := range waitApprovals(t, h, subject) {
				id = a["id"].(string)
			}
			waitFor(t, func() bool {
				for _, f := range rec.seen() {
					if strings.Contains(f, id) {
						return true
					}
				}
				return false
			}, "the client was not told the approval id")
			if n := len(h.up.called()); n != before {
				t.Fatal("the upstream saw the call before a person approved it (the client's accept approved it?)")
			}
			if code := h.admin("POST", "/admin/v1/approvals/"+id+"/approve", nil, nil); code != 204 {
				t.Fatalf("approve: %d", code)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if got := callText(<-done); got != "wrote "+version {
				t.Fatalf("approved call answered %q", got)
			}
		})
	}
	h.gw.Close()
	b, err := os.ReadFile(h.gw.DataDir() + "/audit.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify(bytes.NewReader(b), nil); err != nil {
		t.Fatalf("audit log does not verify: %v", err)
	}
	for _, version := range []string{"2026-07-28", "2025-11-25", "2025-06-18"} {
		p := `"principal":"user-` + version + `"`
		for _, want := range []string{`"decision":"denied","reason":"not permitted by token"`, `"tool":"up_write"`, `"reason":"approval approved by admin"`, `"tool":"up_leak"`} {
			if !auditHas(b, p, want) {
				t.Errorf("audit log has no entry of %s with %s", p, want)
			}
		}
	}
	if !auditHas(b, `"principal":"user-2026-07-28"`, `"decision":"held","reason":"approval pending: input_required sent"`) {
		t.Error("the input_required round is not audited")
	}
	if !bytes.Contains(b, []byte(`"type":"gateway.request"`)) {
		t.Error("refused tokens are not audited")
	}
}

// auditHas reports whether one line of the log holds both a and b.
func auditHas(log []byte, a, b string) bool {
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, a) && strings.Contains(l, b) {
			return true
		}
	}
	return false
}

// waitApprovals waits until subject has a held call and returns its
// approvals.
func waitApprovals(t *testing.T, h *harness, subject string) []map[string]any {
	t.Helper()
	var mine []map[string]any
	waitFor(t, func() bool {
		mine = nil
		for _, a := range pendingApprovals(h) {
			if a["principal"] == subject {
				mine = append(mine, a)
			}
		}
		return len(mine) > 0
	}, "no approval appeared for "+subject)
	return mine
}

// waitFor polls cond (every admin round trip or client read is a
// readiness check; there is no event to wait on from outside).
func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal(msg)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal(msg)
}

// TestRoundTripState attacks the input_required gate with a client that
// runs the rounds itself: the requestState (the approval id) releases one
// call of the same principal, tool and arguments, once; another principal,
// other arguments or a replay are refused, and nothing reaches the upstream
// before a person approves.
func TestRoundTripState(t *testing.T) {
	h := newHarness(t, hopts{})
	manual := &mcp.ClientOptions{MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true},
		ElicitationHandler: (&elicitRecorder{}).handle}
	alice, err := h.connectVersion(t, h.mint("alice", "up_write").Token, "2026-07-28", manual)
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := h.connectVersion(t, h.mint("mallory", "up_write").Token, "2026-07-28", manual)
	if err != nil {
		t.Fatal(err)
	}
	call := func(cs *mcp.ClientSession, text, state string) (*mcp.CallToolResult, error) {
		p := &mcp.CallToolParams{Name: "up_write", Arguments: map[string]any{"text": text}, RequestState: state}
		if state != "" {
			p.InputResponses = mcp.InputResponseMap{"approval": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}}
		}
		return cs.CallTool(context.Background(), p)
	}
	first, err := call(alice, "x", "")
	if err != nil {
		t.Fatal(err)
	}
	if !first.NeedsInput() || first.RequestState == "" {
		t.Fatalf("first round: %+v, want input_required with a requestState", first)
	}
	form, ok := first.InputRequests["approval"].(*mcp.ElicitParams)
	if !ok || !strings.Contains(form.Message, first.RequestState) {
		t.Fatalf("input request %+v does not name approval %s", first.InputRequests, first.RequestState)
	}
	for name, try := range map[string]func() (*mcp.CallToolResult, error){
		"another principal":   func() (*mcp.CallToolResult, error) { return call(mallory, "x", first.RequestState) },
		"other arguments":     func() (*mcp.CallToolResult, error) { return call(alice, "rm -rf", first.RequestState) },
		"a state never given": func() (*mcp.CallToolResult, error) { return call(alice, "x", "00112233445566778899aabbccddeeff") },
	} {
		if _, err := try(); err == nil || !strings.Contains(err.Error(), "requestState does not name a held call of yours") {
			t.Fatalf("%s: err = %v, want a refusal", name, err)
		}
	}
	if got := h.up.called(); len(got) != 0 {
		t.Fatalf("upstream saw %v before any approval", got)
	}
	if code := h.admin("POST", "/admin/v1/approvals/"+first.RequestState+"/approve", nil, nil); code != 204 {
		t.Fatalf("approve: %d", code)
	}
	res, err := call(alice, "x", first.RequestState)
	if err != nil || callText(res) != "wrote x" {
		t.Fatalf("retry after approval: %v %v", res, err)
	}
	if _, err := call(alice, "x", first.RequestState); err == nil {
		t.Fatal("a replayed requestState released a second call")
	}
	if got := h.up.called(); len(got) != 1 {
		t.Fatalf("upstream calls %v, want exactly one", got)
	}
}

// TestStatelessLayer2: a 2026-07-28 client has no session; its layer-2
// credentials are bound to its token chain, used for its calls only, and
// a request without the stateless protocol header still needs a session.
func TestStatelessLayer2(t *testing.T) {
	h := newHarness(t, hopts{upstream: perSessionUpstream})
	pub := h.credentialKey(t)
	alice, bob := h.mint("alice", "per_*"), h.mint("bob", "per_*")
	post := func(token string, sealed *credential.Sealed, version string) int {
		b, _ := json.Marshal(sealed)
		req, _ := http.NewRequest("POST", h.url+"/v1/credentials", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		if version != "" {
			req.Header.Set("Mcp-Protocol-Version", version)
		}
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	sealed, err := credential.Seal(pub, chainID(t, alice.Token), []byte(`{"user-token":"alice-stateless-secret"}`))
	if err != nil {
		t.Fatal(err)
	}
	if code := post(alice.Token, sealed, ""); code != 400 {
		t.Fatalf("no session and no stateless protocol: %d, want 400", code)
	}
	if code := post(bob.Token, sealed, "2026-07-28"); code != 400 {
		t.Fatalf("alice's credentials under bob's token: %d, want 400", code)
	}
	if code := post(alice.Token, sealed, "2026-07-28"); code != 204 {
		t.Fatalf("stateless credentials: %d, want 204", code)
	}
	as, err := h.connectVersion(t, alice.Token, "2026-07-28", nil)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := h.connectVersion(t, bob.Token, "2026-07-28", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := as.CallTool(context.Background(), &mcp.CallToolParams{Name: "per_whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("alice's stateless call: %v %v", err, res)
	}
	res, err = bs.CallTool(context.Background(), &mcp.CallToolParams{Name: "per_whoami", Arguments: map[string]any{}})
	if err != nil || !res.IsError || !strings.Contains(callText(res), `credential "user-token" not provided`) {
		t.Fatalf("bob's stateless call: %v %q", err, callText(res))
	}
	h.upstreamSawOnly(t, "alice-stateless-secret")
}

// statelessUpstream is a 2026-07-28-only MCP server (go-sdk, stateless
// streamable HTTP): "hello" answers with the layer-1 secret it was given,
// "ask" needs the user's input as an input_required round (no server
// request), and it records the protocol header of every request.
func statelessUpstream(t *testing.T) (url string, versions func() []string) {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "modern"}, nil)
	obj := map[string]any{"type": "object"}
	s.AddTool(&mcp.Tool{Name: "hello", InputSchema: obj, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello from " + canary}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "ask", InputSchema: obj, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if r, ok := req.Params.InputResponses["name"].(*mcp.ElicitResult); ok {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%s %v", r.Action, r.Content["name"])}}}, nil
			}
			var a struct{ For string }
			json.Unmarshal(req.Params.Arguments, &a)
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"name": &mcp.ElicitParams{Mode: "form", Message: "your name? (" + canary + ")" + a.For,
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}}}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "fail", InputSchema: obj, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, fmt.Errorf("modern upstream broke with key %s", canary)
		})
	s.AddTool(&mcp.Tool{Name: "put", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}, InputSchema: map[string]any{"type": "object",
		"properties": map[string]any{"region": map[string]any{"type": "string", "x-mcp-header": "Region"}}}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "put in " + req.Extra.Header.Get("Mcp-Param-Region")}}}, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Mcp-Protocol-Version"))
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// TestStatelessUpstream: the gateway talks to a 2026-07-28 upstream (no
// session, no server requests) as to any other: it speaks 2026-07-28 to
// it, its tools are listed and pinned, and calls are redacted. An input
// request the upstream returns (an input_required round) reaches the
// caller that declared elicitation, redacted, and its answer completes the
// call: a 2025-11-25 client is asked on its session (the round belongs to
// the calling request by its context); a 2026-07-28 client gets the round
// itself, with a sealed state, and retries (inputround.go).
func TestStatelessUpstream(t *testing.T) {
	url, versions := statelessUpstream(t)
	h := newHarness(t, hopts{upstream: func(*testUpstream) string {
		return fmt.Sprintf("  modern:\n    url: %s\n", url)
	}})
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			var asked []string
			var mu sync.Mutex
			cs, err := h.connectVersion(t, h.mint("alice-"+version, "modern_*").Token, version, &mcp.ClientOptions{
				ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					mu.Lock()
					asked = append(asked, req.Params.Message)
					mu.Unlock()
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "alice"}}, nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "modern_hello", Arguments: map[string]any{}})
			if err != nil || callText(res) != "hello from [REDACTED]" {
				t.Fatalf("call to a stateless upstream: %q %v", callText(res), err)
			}
			// A tool that marks an argument for an Mcp-Param-* header: the
			// gateway checks the client's header and sends its own upstream.
			if _, err := cs.ListTools(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "modern_put", Arguments: map[string]any{"region": "eu"}})
			if err != nil || res.IsError || callText(res) != "put in eu" {
				t.Fatalf("call with an Mcp-Param header: %q %v", callText(res), err)
			}
			res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "modern_ask", Arguments: map[string]any{}})
			mu.Lock()
			defer mu.Unlock()
			if err != nil || res.IsError || callText(res) != "accept alice" {
				t.Fatalf("input_required round through the gateway: %q %v, want the upstream's answer to the form", callText(res), err)
			}
			if len(asked) != 1 || asked[0] != "your name? ([REDACTED])" {
				t.Fatalf("forms shown: %q, want the upstream's one, redacted", asked)
			}
		})
	}
	for _, v := range versions() {
		if v != "2026-07-28" {
			t.Fatalf("the gateway spoke %q to a 2026-07-28 upstream", v)
		}
	}
}

// Input rounds of concurrent calls on one upstream connection reach each
// its own caller: eight clients (one token, so they share the upstream
// connection) each see exactly the one form of their own call.
func TestUpstreamInputRoundsAttributed(t *testing.T) {
	url, _ := statelessUpstream(t)
	h := newHarness(t, hopts{upstream: func(*testUpstream) string {
		return fmt.Sprintf("  modern:\n    url: %s\n", url)
	}})
	tok := h.mint("alice", "modern_*").Token
	var wg sync.WaitGroup
	for i := range 8 {
		me := fmt.Sprintf(" for client %d", i)
		var asked []string
		var mu sync.Mutex
		cs, err := h.connectVersion(t, tok, "2025-11-25", &mcp.ClientOptions{
			ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
				mu.Lock()
				asked = append(asked, req.Params.Message)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond) // the rounds overlap
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": me}}, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "modern_ask", Arguments: map[string]any{"for": me}})
			if err != nil || callText(res) != "accept "+me {
				t.Errorf("client %d: %q %v", i, callText(res), err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(asked) != 1 || asked[0] != "your name? ([REDACTED])"+me {
				t.Errorf("client %d was shown %q", i, asked)
			}
		}()
	}
	wg.Wait()
}

// TestBridgeBothGenerations runs what `chatmcp connect` runs (mcpbridge,
// the layer-2 hooks through gwclient) between a go-sdk desktop client on
// pipes and the real gateway, for a 2026-07-28 client and a 2025-11-25
// one: each gets its revision, its sealed credential reaches the upstream
// for its own calls, and the token never does.
func TestBridgeBothGenerations(t *testing.T) {
	h := newHarness(t, hopts{upstream: perSessionUpstream})
	for _, version := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(version, func(t *testing.T) {
			tok := h.mint("desk-"+version, "per_*").Token
			secret := "bridge-secret-" + version
			post := func(ctx context.Context, send func(*gwclient.SealedCredentials) error) error {
				key, err := gwclient.FetchCredentialKey(ctx, h.client, h.url)
				if err != nil {
					return err
				}
				sc, err := gwclient.SealCredentials(key, chainID(t, tok), map[string]string{"user-token": secret})
				if err != nil {
					return err
				}
				return send(sc)
			}
			var hooks []string
			opts := &mcpbridge.Options{Endpoint: h.url + "/mcp", HTTP: h.client, Token: tok,
				AfterInitialize: func(ctx context.Context, sid string) error {
					hooks = append(hooks, "session")
					return post(ctx, func(sc *gwclient.SealedCredentials) error {
						return gwclient.PostCredentials(ctx, h.client, h.url, tok, sid, sc)
					})
				},
				BeforeStateless: func(ctx context.Context, v string) error {
					hooks = append(hooks, "stateless")
					return post(ctx, func(sc *gwclient.SealedCredentials) error {
						return gwclient.PostCredentialsStateless(ctx, h.client, h.url, tok, v, sc)
					})
				}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c2bR, c2bW := io.Pipe()
			b2cR, b2cW := io.Pipe()
			local, err := (&mcp.IOTransport{Reader: c2bR, Writer: b2cW}).Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ran := make(chan error, 1)
			go func() { ran <- mcpbridge.Run(ctx, local, opts); b2cW.Close() }()
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "desktop"}, nil).Connect(ctx, &mcp.IOTransport{Reader: b2cR, Writer: c2bW},
				&mcp.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatal(err)
			}
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Fatalf("negotiated %q through the bridge, want %q", got, version)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "per_whoami", Arguments: map[string]any{}})
			if err != nil || res.IsError {
				t.Fatalf("call through the bridge: %v %q", err, callText(res))
			}
			cs.Close()
			cancel()
			<-ran
			want := map[string]string{"2026-07-28": "stateless", "2025-11-25": "session"}[version]
			if len(hooks) != 1 || hooks[0] != want {
				t.Fatalf("hooks %v, want one %s hook", hooks, want)
			}
			h.up.mu.Lock()
			defer h.up.mu.Unlock()
			found := false
			for _, v := range h.up.userTok {
				found = found || v == secret
			}
			for _, a := range h.up.auth {
				if strings.Contains(a, tok) {
					t.Fatal("the client's token reached the upstream")
				}
			}
			if !found {
				t.Fatalf("the upstream never saw the %s client's credential", version)
			}
		})
	}
}

// A per-token connection (an upstream with layer-2 credentials) to a
// 2026-07-28 upstream sends the Mcp-Param-* header a tool's schema asks
// for on its first call: the connection lists the tools first, as the
// shared one does when the gateway syncs.
func TestParamHeadersPerTokenUpstream(t *testing.T) {
	url, _ := statelessUpstream(t)
	h := newHarness(t, hopts{upstream: func(*testUpstream) string {
		return fmt.Sprintf("  modern:\n    url: %s\n    headers:\n      X-User-Token: {credential: user-token}\n", url)
	}})
	alice := h.mint("alice", "modern_*")
	sealed, err := credential.Seal(h.credentialKey(t), chainID(t, alice.Token), []byte(`{"user-token":"alice-secret"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sealed)
	req, _ := http.NewRequest("POST", h.url+"/v1/credentials", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("stateless credentials: %d", resp.StatusCode)
	}
	cs, err := h.connectVersion(t, alice.Token, "2026-07-28", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ListTools(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "modern_put", Arguments: map[string]any{"region": "eu"}})
	if err != nil || res.IsError || callText(res) != "put in eu" {
		t.Fatalf("call on a per-token connection: %q %v", callText(res), err)
	}
	// A read-only call of the same client takes the fast path and is
	// posted on the same per-token connection (call_forward_post.go).
	n := h.gw.FastCalls()
	res, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "modern_hello", Arguments: map[string]any{}})
	if err != nil || res.IsError || callText(res) != "hello from [REDACTED]" || h.gw.FastCalls() != n+1 {
		t.Fatalf("fast-path call on a per-token connection: %q %v (fast-path calls %d, were %d)", callText(res), err, h.gw.FastCalls(), n)
	}
}
