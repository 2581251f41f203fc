package assistant

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/agent/agenttest"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/cmd/chatmcp/cli"
	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/wallet"
)

// TestGrantPerConversation: one agent granted the same tools in two
// conversations by the same inviter in the same second (one clock for
// both) holds two distinct tokens; `chat agent remove` from one
// conversation revokes that grant at the gateway and leaves the other
// working. Without the grant's nonce both would be one token, revoked
// together. No model is needed: the agent is never addressed.
func TestGrantPerConversation(t *testing.T) {
	ctx := context.Background()
	agentKey, agentWallet := agenttest.NewWallet(t)
	dir := t.TempDir()
	st, err := devstack.Start(ctx, &devstack.Options{Dir: filepath.Join(dir, "stack"), Secrets: map[string][]byte{"agent-wallet": agentWallet},
		Log: &syncBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	s := &stack{t: t, st: st, agentKey: agentKey}
	s.agent = agenttest.Start(t, &agenttest.Options{Dir: filepath.Join(dir, "agent"), Relay: st.RelayURL, KBS: st.KBSURL, WalletSecret: "agent-wallet",
		ModelURL: "http://127.0.0.1:9/v1", GatewayURL: st.GatewayURL, GatewayPolicy: st.PolicyFile})
	agentAddr := s.agent.Address.String()
	m, err := st.Admin.Mint(ctx, gwclient.MintRequest{Tools: []string{"notes_list_notes"}, TTL: "1h", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	dev := st.PolicyFile
	alice, bob := newPerson(t, "alice"), newPerson(t, "bob")
	s.must(t, alice, nil, "chat", "login")
	s.must(t, bob, nil, "chat", "login")
	convA := strings.TrimSpace(s.must(t, alice, nil, "chat", "group", "create", "--members", bob.addr.String()))
	convB := strings.TrimSpace(s.must(t, alice, nil, "chat", "group", "create", "--members", bob.addr.String()))

	// Both adds read one clock: the same second, so the same expiry.
	now := time.Now().Truncate(time.Second)
	at := func(args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		env := map[string]string{"CHATMCP_TOKEN": m.Token}
		e := &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] },
			Now: func() time.Time { return now }}
		args = append(args, "--relay", st.RelayURL, "--wallet", alice.walletFile, "--home", alice.home)
		if code := cli.Main(ctx, args, e); code != 0 {
			t.Fatalf("chatmcp %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
	}
	for _, conv := range []string{convA, convB} {
		at("chat", "agent", "add", "--conversation", conv, "--agent", agentAddr, "--policy", dev, "--tools", "notes_*", "--ttl", "30m")
	}

	w, err := wallet.LoadFile(alice.walletFile)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := chat.New(&chat.Options{Relay: st.RelayURL, Wallet: w, Home: alice.home})
	if err != nil {
		t.Fatal(err)
	}
	grantIn := func(conv string) (string, *captoken.Verified) {
		t.Helper()
		gs, err := ac.GrantsTo(ctx, conv, s.agent.Address)
		if err != nil || len(gs) != 1 {
			t.Fatalf("grants to the agent in %s: %v, %v", conv, gs, err)
		}
		v, err := captoken.Parse(gs[0].Token)
		if err != nil {
			t.Fatal(err)
		}
		return gs[0].Token, v
	}
	tokA, vA := grantIn(convA)
	tokB, vB := grantIn(convB)
	if !vA.Expires.Equal(vB.Expires) || vA.Approver != vB.Approver || vA.Holder != vB.Holder {
		t.Fatalf("the two grants differ in more than their nonce (premise): %v/%v %s/%s %s/%s", vA.Expires, vB.Expires, vA.Approver, vB.Approver, vA.Holder, vB.Holder)
	}
	if tokA == tokB || vA.ChainID() == vB.ChainID() {
		t.Fatal("one agent granted the same tools in two conversations in the same second holds one token")
	}

	out := s.must(t, alice, map[string]string{"CHATMCP_TOKEN": m.Token}, "chat", "agent", "remove", "--conversation", convA, "--agent", agentAddr,
		"--gateway", st.GatewayURL, "--gateway-policy", dev)
	if !strings.Contains(out, "revoked grant "+vA.ChainID()) || strings.Contains(out, vB.ChainID()) {
		t.Fatalf("remove from %s printed %q", convA, out)
	}
	if cs, err := s.connect(tokA); err == nil {
		cs.Close()
		t.Fatal("the gateway still accepts the grant of the conversation the agent was removed from")
	}
	cs, err := s.connect(tokB)
	if err != nil {
		t.Fatalf("the other conversation's grant is refused after removing the agent from %s: %v", convA, err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes_list_notes", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("notes_list_notes with the remaining grant: %v %+v", err, res)
	}
}
