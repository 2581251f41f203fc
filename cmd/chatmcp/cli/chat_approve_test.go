package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/wallet"
)

// TestChatApproveChecksArguments: an approval request whose arguments (what
// the person reads) do not hash to the arguments_sha256 a decision signs is
// not listed by `chat approvals` and is refused by `chat approve`, with
// nothing signed, even from the granted agent itself; a genuine one is
// listed with its complete arguments and passes the check (the full round
// trip to a real gateway is e2e/assistant's TestAssistant).
func TestChatApproveChecksArguments(t *testing.T) {
	ctx := context.Background()
	url := startTestRelay(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	aliceFile := filepath.Join(dir, "alice.json")
	ok(t, "wallet", "new", "-o", aliceFile)
	aliceW, err := wallet.LoadFile(aliceFile)
	if err != nil {
		t.Fatal(err)
	}
	agentW, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := chat.New(&chat.Options{Relay: url, Wallet: aliceW, Home: home})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := chat.New(&chat.Options{Relay: url, Wallet: agentW, Home: filepath.Join(dir, "agent")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*chat.Client{alice, agent} {
		if err := c.Login(ctx); err != nil {
			t.Fatal(err)
		}
	}
	conv, err := alice.CreateGroup(ctx, []wallet.Address{agentW.Address()})
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Allow(ctx, aliceW.Address()); err != nil {
		t.Fatal(err)
	}
	if err := alice.Allow(ctx, agentW.Address()); err != nil {
		t.Fatal(err)
	}
	send := func(c *chat.Client, m *agentapi.Message) {
		t.Helper()
		pt, err := agentapi.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Send(ctx, conv, pt); err != nil {
			t.Fatal(err)
		}
	}
	exp := time.Now().Add(time.Hour)
	send(alice, &agentapi.Message{Kind: agentapi.KindGrant, Grant: &agentapi.Grant{Token: "cmt1.x", Approver: aliceW.Address(), Agent: agentW.Address(),
		Tools: []string{"notes_*"}, Expires: exp, Conversation: conv}})
	request := func(id, shown, hashed string) {
		t.Helper()
		canon, err := agentapi.CanonicalArguments([]byte(shown))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := agentapi.ArgumentsSHA256([]byte(hashed))
		if err != nil {
			t.Fatal(err)
		}
		send(agent, &agentapi.Message{Kind: agentapi.KindApprovalRequest, ApprovalRequest: &agentapi.ApprovalRequest{ID: id, Gateway: "https://127.0.0.1:1",
			Tool: "notes_write_note", Arguments: string(canon), ArgumentsSHA256: sum, RequestedBy: agentW.Address(), Expires: exp}})
	}
	const genuine, forged = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	todo := `{"name":"todo","text":"buy milk"}`
	request(genuine, todo, todo)
	request(forged, todo, `{"name":"todo","text":"sell the house"}`)

	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("allow: [sim]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	as := func(args ...string) []string {
		return append(args, "--relay", url, "--wallet", aliceFile, "--home", home)
	}

	code, out, errs := run(t, as("chat", "approvals", "--json")...)
	if code != 0 {
		t.Fatalf("approvals: exit %d, %s", code, errs)
	}
	var listed []struct{ ID, Arguments string }
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("approvals --json: %v in %q", err, out)
	}
	if len(listed) != 1 || listed[0].ID != genuine || listed[0].Arguments != todo {
		t.Errorf("approvals listed %+v, want only %s with its complete arguments", listed, genuine)
	}
	if !strings.Contains(errs, forged) || !strings.Contains(errs, "arguments check") {
		t.Errorf("approvals does not warn about the forged request: %q", errs)
	}

	code, _, errs = run(t, as("chat", "approve", "--gateway", "https://127.0.0.1:1", "--policy", policy, forged)...)
	if code != ExitInvalid || !strings.Contains(errs, "arguments check failed, nothing signed") || !strings.Contains(errs, "not to the arguments_sha256") {
		t.Errorf("approve of the forged request: exit %d, stderr %q; want %d naming the arguments check", code, errs, ExitInvalid)
	}
	// The genuine request passes the check and goes on to the gateway
	// (none listens here, so the delivery fails, and differently).
	code, _, errs = run(t, as("chat", "approve", "--gateway", "https://127.0.0.1:1", "--policy", policy, genuine)...)
	t.Logf("genuine approve: exit %d, %s", code, errs)
	if code == 0 || code == ExitInvalid || strings.Contains(errs, "arguments check") {
		t.Errorf("approve of the genuine request: exit %d, stderr %q; want it past the arguments check", code, errs)
	}
}
