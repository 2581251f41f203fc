package assistant

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/agent/agenttest"
	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/cmd/chatmcp/cli"
	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/gwtest"
	"github.com/chatmcp/chatmcp/internal/tinyllm"
	"github.com/chatmcp/chatmcp/wallet"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes (daemon logs).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// person runs the chatmcp CLI as one wallet and watches the relay with a
// chat client of the same device.
type person struct {
	name       string
	walletFile string
	home       string
	addr       wallet.Address
	msgs       chan chat.Message
}

func newPerson(t *testing.T, name string) *person {
	t.Helper()
	w, key := agenttest.NewWallet(t)
	dir := t.TempDir()
	p := &person{name: name, walletFile: filepath.Join(dir, name+".json"), home: filepath.Join(dir, "home"), addr: w.Address()}
	if err := os.WriteFile(p.walletFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// result is what one CLI run printed.
type result struct {
	code           int
	stdout, stderr string
}

// run runs `chatmcp args...` as p against the stack, with env as its only
// environment (plus the relay, wallet and home of p).
func (s *stack) run(t *testing.T, p *person, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	if p != nil {
		args = append(args, "--relay", s.st.RelayURL, "--wallet", p.walletFile, "--home", p.home)
	}
	code := cli.Main(context.Background(), args, e)
	return result{code, out.String(), errb.String()}
}

func (s *stack) must(t *testing.T, p *person, env map[string]string, args ...string) string {
	t.Helper()
	r := s.run(t, p, env, args...)
	if r.code != 0 {
		t.Fatalf("chatmcp %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// nextText waits for the text message text in conv.
func (s *stack) nextText(t *testing.T, p *person, conv, text string) chat.Message {
	t.Helper()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if m.Conversation == conv && m.Text == text {
				return m
			}
		case <-timeout:
			t.Fatalf("%s did not see %q in %s within 90 s", p.name, text, conv)
		}
	}
}

// watch starts following the relay for p (its own client of p's device).
func (s *stack) watch(p *person) {
	s.t.Helper()
	w, err := wallet.LoadFile(p.walletFile)
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := chat.New(&chat.Options{Relay: s.st.RelayURL, Wallet: w, Home: p.home})
	if err != nil {
		s.t.Fatal(err)
	}
	p.msgs = make(chan chat.Message, 256)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Watch(ctx, 0, func(m chat.Message) error { p.msgs <- m; return nil }) }()
	s.t.Cleanup(func() { cancel(); <-done })
}

// next waits for the next message in conv that p can read and that is of
// kind.
func (s *stack) next(t *testing.T, p *person, conv string, kind agentapi.Kind) (chat.Message, *agentapi.Message) {
	t.Helper()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if m.Conversation != conv || m.Text == "" {
				continue
			}
			am, err := agentapi.ParseMessage(m.Text)
			if err != nil {
				t.Fatalf("message %s from %s does not parse: %v", m.ID, m.Sender, err)
			}
			t.Logf("%s saw %s from %s", p.name, am.Kind, m.Sender)
			if am.Kind == kind {
				return m, am
			}
		case <-timeout:
			t.Fatalf("%s saw no %s message in %s within 90 s; the agent's log:\n%s", p.name, kind, conv, s.agent.Log.Bytes())
		}
	}
}

type stack struct {
	t        *testing.T
	st       *devstack.Stack
	gwLog    *syncBuffer
	agent    *agenttest.Agent
	agentKey *wallet.Keypair
	model    string
}

func count(entries []map[string]any, f func(map[string]any) bool) int {
	n := 0
	for _, e := range entries {
		if f(e) {
			n++
		}
	}
	return n
}

// connect opens an MCP session at the gateway with token (RA-TLS pinned).
func (s *stack) connect(token string) (*mcp.ClientSession, error) {
	hc := gwtest.Client(token, s.st.Admin.HTTP.Transport)
	return mcp.NewClient(&mcp.Implementation{Name: "e2e"}, nil).Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: s.st.GatewayURL + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
}

// TestAssistant walks issue 11 item 7 through the CLI, each step an attack
// or a promise checked against the real daemons.
func TestAssistant(t *testing.T) {
	ctx := context.Background()
	agentKey, agentWallet := agenttest.NewWallet(t)
	dir := t.TempDir()
	gwLog := &syncBuffer{}
	st, err := devstack.Start(ctx, &devstack.Options{Dir: filepath.Join(dir, "stack"), Secrets: map[string][]byte{"agent-wallet": agentWallet},
		ApprovalTimeout: 90 * time.Second, Log: gwLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	s := &stack{t: t, st: st, gwLog: gwLog, agentKey: agentKey, model: tinyllm.Start(t)}
	s.agent = agenttest.Start(t, &agenttest.Options{Dir: filepath.Join(dir, "agent"), Relay: st.RelayURL, KBS: st.KBSURL, WalletSecret: "agent-wallet",
		ModelURL: s.model, GatewayURL: st.GatewayURL, GatewayPolicy: st.PolicyFile, ApprovalWait: 90 * time.Second,
		// The tiny model loses its way in long histories: each turn sees
		// only the message that addressed the agent.
		Limits: agentapi.Limits{ContextMessages: 1}})
	agentAddr := s.agent.Address.String()
	if agentAddr != agentKey.Address().String() {
		t.Fatalf("the agent signed in as %s, not its KBS wallet %s", agentAddr, agentKey.Address())
	}

	// alice's own gateway token: two notes tools, not read_note.
	m, err := st.Admin.Mint(ctx, gwclient.MintRequest{Tools: []string{"notes_list_notes", "notes_write_note"}, TTL: "1h", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	aliceToken := m.Token
	strict := filepath.Join(dir, "strict-policy.yaml")
	if err := os.WriteFile(strict, []byte("allow: [sim]\nsim:\n  measurement: ["+strings.Repeat("00", 48)+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := st.PolicyFile // accepts this process's SIMULATED measurement
	withPolicy := map[string]string{"CHATMCP_AGENT_POLICY": dev}

	alice, bob := newPerson(t, "alice"), newPerson(t, "bob")
	s.must(t, alice, nil, "chat", "login")
	s.must(t, bob, nil, "chat", "login")
	conv := strings.TrimSpace(s.must(t, alice, nil, "chat", "group", "create", "--members", bob.addr.String()))
	// bob lets the agent's messages into his inbox (else each costs it a stamp).
	s.must(t, bob, nil, "chat", "allow", agentAddr)
	s.watch(alice)
	s.watch(bob)

	membersOf := func() []wallet.Address {
		t.Helper()
		w, _ := wallet.LoadFile(alice.walletFile)
		c, err := chat.New(&chat.Options{Relay: st.RelayURL, Wallet: w, Home: alice.home})
		if err != nil {
			t.Fatal(err)
		}
		cur, err := c.Membership(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		return cur.Members
	}

	t.Run("evidence failing alice's policy: never added, no key", func(t *testing.T) {
		r := s.run(t, alice, map[string]string{"CHATMCP_TOKEN": aliceToken}, "chat", "agent", "add", "--conversation", conv, "--agent", agentAddr,
			"--policy", strict, "--tools", "notes_*")
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 3 || len(lines) != 1 || !strings.Contains(lines[0], "measurement") {
			t.Fatalf("add under a policy the agent fails: exit %d, stderr %q; want exit 3 and one line naming the measurement check", r.code, r.stderr)
		}
		if got := membersOf(); len(got) != 2 {
			t.Fatalf("members after the refused add: %v", got)
		}
		if r := s.run(t, alice, nil, "chat", "agent", "inspect", agentAddr, "--policy", strict); r.code != 3 {
			t.Fatalf("inspect under the strict policy: exit %d %s", r.code, r.stderr)
		}
	})

	var grant *agentapi.Grant
	t.Run("add: verified, member, holding a grant no wider than alice's token", func(t *testing.T) {
		out := s.must(t, alice, map[string]string{"CHATMCP_TOKEN": aliceToken}, "chat", "agent", "add", "--conversation", conv, "--agent", agentAddr,
			"--policy", dev, "--tools", "*", "--ttl", "30m")
		if !strings.Contains(out, "added "+agentAddr) {
			t.Fatalf("add printed %q", out)
		}
		_, gm := s.next(t, alice, conv, agentapi.KindGrant)
		grant = gm.Grant
		if !grant.Approver.Equal(alice.addr) || grant.Agent.String() != agentAddr {
			t.Fatalf("grant %+v does not name alice as approver and the agent", grant)
		}
		v, err := captoken.Parse(grant.Token)
		if err != nil || v.Approver != alice.addr.String() || v.Holder != agentAddr {
			t.Fatalf("grant token: %v, approver %q holder %q", err, v.Approver, v.Holder)
		}
		cs, err := s.connect(grant.Token)
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		lt, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tl := range lt.Tools {
			names = append(names, tl.Name)
		}
		if strings.Join(names, ",") != "notes_list_notes,notes_write_note" {
			t.Fatalf("the grant (--tools '*') lists %v: wider than alice's token", names)
		}
		insp := s.must(t, alice, nil, "chat", "agent", "inspect", agentAddr, "--policy", dev)
		for _, want := range []string{"SIMULATED", s.model, "attested: no", "@assistant", st.GatewayURL} {
			if !strings.Contains(insp, want) {
				t.Errorf("inspect output lacks %q:\n%s", want, insp)
			}
		}
	})

	agentDevice := ""
	if out := s.must(t, alice, nil, "chat", "agent", "inspect", agentAddr, "--policy", dev, "--json"); true {
		var devs []struct{ Device string }
		if err := json.Unmarshal([]byte(out), &devs); err != nil || len(devs) != 1 {
			t.Fatalf("inspect --json: %v %q", err, out)
		}
		agentDevice = devs[0].Device
	}

	t.Run("default agent policy rejects sim: bob's message is not for the agent", func(t *testing.T) {
		r := s.run(t, bob, nil, "chat", "send", "--conversation", conv, "hello everyone")
		if r.code != 0 || !strings.Contains(r.stderr, "not encrypted for "+agentAddr) {
			t.Fatalf("bob's send: exit %d, stderr %q; want a warning that the agent got no key", r.code, r.stderr)
		}
		if m := s.nextText(t, alice, conv, "hello everyone"); slices.Contains(m.Recipients, agentDevice) || len(m.Recipients) == 0 {
			t.Fatalf("bob's message wraps keys for %v, the agent's device %s among them", m.Recipients, agentDevice)
		}
	})

	t.Run("list my notes: a call under the grant, audited with its chain, a verified receipt", func(t *testing.T) {
		s.must(t, alice, withPolicy, "chat", "send", "--conversation", conv, "@assistant please list my notes")
		if m := s.nextText(t, alice, conv, "@assistant please list my notes"); !slices.Contains(m.Recipients, agentDevice) {
			t.Fatalf("alice's message (her policy accepts the agent) wraps no key for its device: %v", m.Recipients)
		}
		msg, rm := s.next(t, alice, conv, agentapi.KindReply)
		tools := rm.Reply.Receipt.Tools
		if len(tools) != 1 || tools[0].Tool != "notes_list_notes" || tools[0].Outcome != "ok" {
			t.Fatalf("receipt tool calls %+v, want one notes_list_notes that succeeded", tools)
		}
		v, _ := captoken.Parse(grant.Token)
		if n := count(agenttest.AuditEntries(t, s.st.GatewayData, "gateway.call"), func(e map[string]any) bool {
			return e["tool"] == "notes_list_notes" && e["token_chain"] == v.ChainID() && e["decision"] == "granted"
		}); n != 1 {
			t.Fatalf("%d audited notes_list_notes calls under the grant's chain %s, want 1", n, v.ChainID())
		}
		out := s.must(t, bob, nil, "chat", "agent", "receipt", "--conversation", conv, msg.ID, "--policy", dev)
		if !strings.Contains(out, "verified") || !strings.Contains(out, "notes_list_notes") {
			t.Fatalf("receipt:\n%s", out)
		}
	})

	v, _ := captoken.Parse(grant.Token)
	writes := func(t *testing.T, decision string) int {
		return count(agenttest.AuditEntries(t, s.st.GatewayData, "gateway.call.result"), func(e map[string]any) bool {
			return e["tool"] == "notes_write_note" && e["decision"] == decision
		})
	}

	t.Run("write a note: bob's approval refused, alice's accepted, the upstream writes", func(t *testing.T) {
		s.must(t, alice, withPolicy, "chat", "send", "--conversation", conv, "@assistant write a note called todo saying buy milk")
		_, am := s.next(t, bob, conv, agentapi.KindApprovalRequest)
		req := am.ApprovalRequest
		if req.Tool != "notes_write_note" || req.RequestedBy.String() != agentAddr {
			t.Fatalf("approval request %+v", req)
		}
		var listed []map[string]any
		if err := json.Unmarshal([]byte(s.must(t, bob, nil, "chat", "approvals", "--json")), &listed); err != nil {
			t.Fatal(err)
		}
		if len(listed) != 1 || listed[0]["id"] != req.ID || listed[0]["tool"] != "notes_write_note" || listed[0]["conversation"] != conv || listed[0]["requested_by"] != agentAddr {
			t.Fatalf("bob's approvals: %v", listed)
		}
		r := s.run(t, bob, nil, "chat", "approve", "--gateway", st.GatewayURL, "--policy", dev, req.ID)
		if r.code != 3 || !strings.Contains(r.stderr, "names "+alice.addr.String()+" as its approver, not "+bob.addr.String()) {
			t.Fatalf("bob approving alice's grant: exit %d %s", r.code, r.stderr)
		}
		if writes(t, "ok") != 0 {
			t.Fatal("the write reached the upstream on bob's approval")
		}
		out := s.must(t, alice, nil, "chat", "approve", "--gateway", st.GatewayURL, "--policy", dev, req.ID)
		if !strings.Contains(out, "approved "+req.ID) {
			t.Fatalf("alice's approve printed %q", out)
		}
		_, rm := s.next(t, alice, conv, agentapi.KindReply)
		if tl := rm.Reply.Receipt.Tools; len(tl) == 0 || tl[0].Tool != "notes_write_note" || tl[0].ApprovalID != req.ID {
			t.Fatalf("receipt tool calls %+v", tl)
		}
		if writes(t, "ok") != 1 {
			t.Fatalf("%d successful notes_write_note results at the gateway, want 1", writes(t, "ok"))
		}
		if n := count(agenttest.AuditEntries(t, s.st.GatewayData, "gateway.approval"), func(e map[string]any) bool {
			return e["actor"] == "wallet:"+alice.addr.String() && e["token_chain"] == v.ChainID() && e["decision"] == "approved"
		}); n != 1 {
			t.Fatalf("no audit of alice approving under the grant")
		}
		if n := count(agenttest.AuditEntries(t, s.st.GatewayData, "gateway.approval"), func(e map[string]any) bool {
			return e["actor"] == "wallet:"+bob.addr.String() && e["decision"] == "denied"
		}); n != 1 {
			t.Fatalf("bob's refused statement is not audited")
		}
		var left []map[string]any
		json.Unmarshal([]byte(s.must(t, alice, nil, "chat", "approvals", "--json")), &left)
		if len(left) != 0 {
			t.Errorf("the decided request is still listed: %v", left)
		}
	})

	t.Run("a denial: the upstream never sees the write", func(t *testing.T) {
		s.must(t, alice, withPolicy, "chat", "send", "--conversation", conv, "@assistant write a note called shop saying eggs")
		_, am := s.next(t, alice, conv, agentapi.KindApprovalRequest)
		s.must(t, alice, nil, "chat", "deny", "--gateway", st.GatewayURL, "--policy", dev, am.ApprovalRequest.ID)
		s.next(t, alice, conv, agentapi.KindReply)
		if writes(t, "ok") != 1 {
			t.Fatalf("a denied write reached the upstream: %d writes", writes(t, "ok"))
		}
		if n := count(agenttest.AuditEntries(t, s.st.GatewayData, "gateway.call"), func(e map[string]any) bool {
			return e["tool"] == "notes_write_note" && e["decision"] == "denied" && strings.Contains(e["reason"].(string), "denied by wallet "+alice.addr.String())
		}); n != 1 {
			t.Fatalf("the denial is not audited as alice's")
		}
	})

	canary := "canary-" + strings.Repeat("k9", 12)
	t.Run("canary message", func(t *testing.T) {
		s.must(t, alice, withPolicy, "chat", "send", "--conversation", conv, "@assistant hello "+canary)
		s.next(t, alice, conv, agentapi.KindReply)
	})

	t.Run("remove: no key for later messages, the grant refused at the gateway", func(t *testing.T) {
		out := s.must(t, alice, map[string]string{"CHATMCP_TOKEN": aliceToken}, "chat", "agent", "remove", "--conversation", conv, "--agent", agentAddr,
			"--gateway", st.GatewayURL, "--gateway-policy", dev)
		if !strings.Contains(out, "removed "+agentAddr) || !strings.Contains(out, "revoked grant "+v.ChainID()) {
			t.Fatalf("remove printed %q", out)
		}
		if _, err := s.connect(grant.Token); err == nil {
			t.Fatal("the gateway still accepts the agent's grant")
		}
		if _, err := s.connect(aliceToken); err != nil {
			t.Fatalf("alice's own token refused after revoking her grant: %v", err)
		}
		after := s.must(t, alice, withPolicy, "chat", "send", "--conversation", conv, "after the agent left")
		if m := s.nextText(t, alice, conv, "after the agent left"); slices.Contains(m.Recipients, agentDevice) || len(m.Recipients) == 0 {
			t.Fatalf("the message after the removal wraps keys for %v, the agent's device %s among them", m.Recipients, agentDevice)
		}
		// Read with the agent's own device (its data directory): what it
		// read before opens, what was sealed after it left is not even
		// delivered to it, and would not open.
		ac, err := chat.New(&chat.Options{Relay: st.RelayURL, Wallet: agentKey, Home: s.agent.Data})
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := ac.ReadAll(ctx, chat.ReadOptions{Conversation: conv})
		if err != nil {
			t.Fatal(err)
		}
		var opened, notFor int
		for _, m := range msgs {
			if strings.Contains(after, m.ID) {
				if !m.NotForDevice || m.Text != "" {
					t.Fatalf("the agent's device reads the message sealed after its removal: %+v", m)
				}
				notFor++
			}
			if m.Text == "@assistant please list my notes" {
				opened++
			}
		}
		if notFor > 1 || opened != 1 {
			t.Fatalf("agent's device: %d messages after removal seen, %d earlier opened; want at most 1 (not for it) and 1", notFor, opened)
		}
	})

	t.Run("the canary is in no file or log of the agent or the gateway", func(t *testing.T) {
		s.agent.Stop()
		agenttest.AssertAbsent(t, canary, s.agent.Data, s.agent.Log.Bytes())
		agenttest.AssertAbsent(t, canary, st.GatewayData, gwLog.Bytes())
	})
}
