package agent_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/agent"
	"github.com/chatmcp/chatmcp/agent/agenttest"
	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/gwtest"
	"github.com/chatmcp/chatmcp/ratls"
	"github.com/chatmcp/chatmcp/wallet"
)

// env is a real stack on loopback (devstack: KBS, gateway with the notes
// upstream, relay; the INSECURE simulated TEE), alice and bob, and an agent.
type env struct {
	t          *testing.T
	st         *devstack.Stack
	alice, bob *member
	agent      *agenttest.Agent
	agentOpts  *agenttest.Options
	aliceToken string
}

var grants atomic.Int64

// member is a person: a chat client to send with, and a second client of
// the same device watching the relay (a chat.Client is not for concurrent
// use).
type member struct {
	c    *chat.Client
	msgs chan chat.Message
}

func newMember(t *testing.T, ctx context.Context, relay string, policy *attest.Policy) *member {
	t.Helper()
	w, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	opts := &chat.Options{Relay: relay, Wallet: w, Home: home, AgentPolicy: policy}
	c, err := chat.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	wc, err := chat.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	m := &member{c: c, msgs: make(chan chat.Message, 256)}
	go wc.Watch(ctx, 0, func(msg chat.Message) error { m.msgs <- msg; return nil })
	return m
}

// next returns the next message in conv for which ok is true.
func (m *member) next(t *testing.T, conv string, ok func(chat.Message, *agentapi.Message) bool) (chat.Message, *agentapi.Message) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case msg := <-m.msgs:
			if msg.Conversation != conv || msg.Err != "" {
				continue
			}
			am, err := agentapi.ParseMessage(msg.Text)
			if err != nil {
				continue // a member's malformed structured message
			}
			if ok(msg, am) {
				return msg, am
			}
		case <-timeout:
			t.Fatal("no matching message within 60 s")
		}
	}
}

// reply waits for the agent's next reply in conv and verifies its receipt
// against the agent's published device and evidence.
func (e *env) reply(conv string) *agentapi.Reply {
	e.t.Helper()
	_, m := e.alice.next(e.t, conv, func(_ chat.Message, m *agentapi.Message) bool { return m.Kind == agentapi.KindReply })
	e.verifyReceipt(m.Reply)
	return m.Reply
}

func (e *env) verifyReceipt(r *agentapi.Reply) {
	e.t.Helper()
	devs, err := e.alice.c.InspectAgent(context.Background(), e.agent.Address, e.policy())
	if err != nil || len(devs) != 1 {
		e.t.Fatalf("inspecting the agent: %v (%d devices)", err, len(devs))
	}
	if err := agentapi.VerifyReceipt(r.Receipt, r.Text, &devs[0].Cert, devs[0].Evidence); err != nil {
		e.t.Fatalf("receipt: %v", err)
	}
}

func (e *env) policy() *attest.Policy {
	p, err := attest.LoadPolicy(e.st.PolicyFile)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// with returns e reporting to t (a subtest).
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

type envOptions struct {
	modelURL string
	// modelAttested: the model endpoint serves RA-TLS (simulated
	// evidence of this process) and the agent checks it with the stack's
	// policy.
	modelAttested bool
	refreshEvery  time.Duration
	limits        agentapi.Limits
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, walletJSON := agenttest.NewWallet(t)
	dir := t.TempDir()
	st, err := devstack.Start(ctx, &devstack.Options{Dir: filepath.Join(dir, "stack"), Secrets: map[string][]byte{"agent-wallet": walletJSON},
		ApprovalTimeout: 30 * time.Second, StampBits: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	e := &env{t: t, st: st}
	e.agentOpts = &agenttest.Options{Dir: filepath.Join(dir, "agent"), Relay: st.RelayURL, KBS: st.KBSURL, WalletSecret: "agent-wallet",
		ModelURL: o.modelURL, ModelPolicy: map[bool]string{true: st.PolicyFile}[o.modelAttested], GatewayURL: st.GatewayURL, GatewayPolicy: st.PolicyFile, Limits: o.limits, ApprovalWait: 30 * time.Second, RefreshEvery: o.refreshEvery}
	e.agent = agenttest.Start(t, e.agentOpts)
	policy := e.policy()
	e.alice = newMember(t, ctx, st.RelayURL, policy)
	e.bob = newMember(t, ctx, st.RelayURL, policy)
	m, err := st.Admin.Mint(ctx, gwclient.MintRequest{Tools: []string{"notes_*"}, TTL: "1h", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	e.aliceToken = m.Token
	return e
}

// group creates a group of alice, bob and the agent, and has alice send the
// agent a grant for tools.
func (e *env) group(tools ...string) string {
	e.t.Helper()
	ctx := context.Background()
	// bob knows alice: her messages need no stamp for him.
	if err := e.bob.c.Allow(ctx, e.alice.c.Address()); err != nil {
		e.t.Fatal(err)
	}
	conv, err := e.alice.c.CreateGroup(ctx, []wallet.Address{e.bob.c.Address(), e.agent.Address})
	if err != nil {
		e.t.Fatal(err)
	}
	// bob lets the agent's replies into his inbox; otherwise each one
	// costs the agent a proof-of-work stamp.
	if err := e.bob.c.Allow(ctx, e.agent.Address); err != nil {
		e.t.Fatal(err)
	}
	if len(tools) > 0 {
		e.grant(e.alice, conv, e.alice.c.Address(), tools...)
	}
	return conv
}

// grant has from send a grant naming approver (and the agent as holder),
// derived from alice's token as `chatmcp chat agent add` does, and returns
// its token.
func (e *env) grant(from *member, conv string, approver wallet.Address, tools ...string) string {
	e.t.Helper()
	// Each grant its own expiry: attenuation is deterministic, and two
	// grants with the same caveats would be one token (revoking one would
	// revoke the other).
	exp := time.Now().Add(time.Hour + time.Duration(grants.Add(1))*time.Second).UTC().Truncate(time.Second)
	tok, err := captoken.Attenuate(e.aliceToken, captoken.Caveat{Tools: tools, Expires: exp, Approver: approver.String(), Holder: e.agent.Address.String()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.send(from, conv, &agentapi.Message{Kind: agentapi.KindGrant, Grant: &agentapi.Grant{Token: tok, Approver: approver,
		Agent: e.agent.Address, Tools: tools, Expires: exp, Conversation: conv}})
	return tok
}

// member returns a client of the gateway's member endpoints (statements,
// revocation of derived tokens), trusting it by RA-TLS under the stack's
// policy.
func (e *env) gwMember() *gwclient.Member {
	e.t.Helper()
	tc, err := (&gwclient.Trust{Verifier: ratls.NewVerifier(verifiers.New(nil), e.policy(), nil)}).TLSConfig()
	if err != nil {
		e.t.Fatal(err)
	}
	return &gwclient.Member{BaseURL: e.st.GatewayURL, HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}}
}

func (e *env) send(from *member, conv string, m *agentapi.Message) string {
	e.t.Helper()
	pt, err := agentapi.Encode(m)
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := from.c.Send(context.Background(), conv, pt)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(s.Withheld) > 0 {
		e.t.Fatalf("the agent's key was withheld: %+v", s.Withheld)
	}
	return s.ID
}

func (e *env) say(from *member, conv, text string) string {
	e.t.Helper()
	return e.send(from, conv, &agentapi.Message{Kind: agentapi.KindText, Text: text})
}

// callAsAlice calls a tool on the gateway with alice's own token.
func (e *env) callAsAlice(tool string, args map[string]any) *mcp.CallToolResult {
	e.t.Helper()
	ctx := context.Background()
	hc := gwtest.Client(e.aliceToken, e.st.Admin.HTTP.Transport)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "alice"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: e.st.GatewayURL + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// scripted is a small OpenAI-compatible chat-completions server written for
// these tests: it answers with the completions a test queues, in order, and
// records each request. It is NOT a model: it tests the agent's own logic
// (several tool calls in a turn, limits, model errors), which the tiny test
// model cannot reach reliably.
type scripted struct {
	srv  *httptest.Server
	mu   sync.Mutex
	next []scriptedReply
	reqs []agent.ChatRequest
}

type scriptedReply struct {
	status int
	body   string
}

// newScripted starts the scripted server; with attested, over RA-TLS
// carrying this process's simulated evidence (as an attested model endpoint
// would, with real evidence).
func newScripted(t *testing.T, attested bool) *scripted {
	s := &scripted{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req agent.ChatRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, `{"error":{"message":"bad request"}}`, 400)
			return
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		rep := scriptedReply{200, completion("(script exhausted)", nil)}
		if len(s.next) > 0 {
			rep, s.next = s.next[0], s.next[1:]
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	if attested {
		att, err := sim.NewAttester(nil)
		if err != nil {
			t.Fatal(err)
		}
		// Not StartTLS: it would install httptest's own certificate.
		s.srv.Listener = tls.NewListener(s.srv.Listener, ratls.NewIssuer(att, nil).ServerConfig())
		s.srv.Start()
		s.srv.URL = strings.Replace(s.srv.URL, "http://", "https://", 1)
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	return s
}

// reset empties the queue and the recorded requests.
func (s *scripted) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next, s.reqs = nil, nil
}

func (s *scripted) url() string { return s.srv.URL + "/v1" }

func (s *scripted) queue(r ...scriptedReply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = append(s.next, r...)
}

func (s *scripted) requests() []agent.ChatRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]agent.ChatRequest(nil), s.reqs...)
}

// completion is a chat completion with content text and tool calls
// (name, arguments JSON) pairs.
func completion(text string, calls [][2]string) string {
	msg := map[string]any{"role": "assistant", "content": text}
	finish := "stop"
	if len(calls) > 0 {
		var tcs []any
		for i, c := range calls {
			tcs = append(tcs, map[string]any{"id": "call_" + string(rune('a'+i)), "type": "function", "function": map[string]any{"name": c[0], "arguments": c[1]}})
		}
		msg["tool_calls"], msg["content"], finish = tcs, nil, "tool_calls"
	}
	b, _ := json.Marshal(map[string]any{"id": "x", "object": "chat.completion", "choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}}})
	return string(b)
}

func ok(body string) scriptedReply { return scriptedReply{200, body} }
