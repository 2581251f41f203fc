package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChatAgentRefusals: the agent and approval commands refuse bad input
// with the documented exit code and a line naming what is wrong, before
// anything changes; the full flows run against a real agent in
// e2e/assistant.
func TestChatAgentRefusals(t *testing.T) {
	url := startTestRelay(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	users := map[string]string{}
	for _, name := range []string{"alice", "bob", "carol"} {
		users[name] = strings.TrimSpace(ok(t, "wallet", "new", "-o", filepath.Join(dir, name+".json")))
	}
	as := func(name string, args ...string) []string {
		return append(args, "--relay", url, "--wallet", filepath.Join(dir, name+".json"), "--home", home)
	}
	ok(t, as("alice", "chat", "login")...)
	ok(t, as("bob", "chat", "login")...)
	conv := strings.TrimSpace(ok(t, as("alice", "chat", "group", "create", "--members", users["bob"])...))
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("allow: [sim]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const id = "0123456789abcdef0123456789abcdef"
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"add without flags", as("alice", "chat", "agent", "add"), 1, "--conversation, --agent and --policy are required"},
		{"add to a malformed conversation", as("alice", "chat", "agent", "add", "--conversation", "x", "--agent", users["bob"], "--policy", policy, "--tools", "a", "--token", "cmt1.x"), 2, "not 32 lowercase hex"},
		{"add without tools", as("alice", "chat", "agent", "add", "--conversation", conv, "--agent", users["bob"], "--policy", policy, "--token", "cmt1.x"), 1, "--tools is required"},
		{"add without a token", as("alice", "chat", "agent", "add", "--conversation", conv, "--agent", users["bob"], "--policy", policy, "--tools", "a"), 1, "no gateway token"},
		{"add with a malformed token", as("alice", "chat", "agent", "add", "--conversation", conv, "--agent", users["bob"], "--policy", policy, "--tools", "a", "--token", "cmt1.x"), 2, "--token"},
		{"a person is no agent", as("alice", "chat", "agent", "inspect", users["bob"], "--policy", policy), 3, "publishes no evidence"},
		{"inspect without a policy", as("alice", "chat", "agent", "inspect", users["bob"]), 1, "--policy FILE is required"},
		{"receipt without a conversation", as("alice", "chat", "agent", "receipt", id), 1, "--conversation is required"},
		{"receipt of a missing message", as("alice", "chat", "agent", "receipt", "--conversation", conv, id), 1, "no message " + id},
		{"approve what nobody asked", as("alice", "chat", "approve", "--gateway", "https://127.0.0.1:1", id), 1, "no waiting approval request " + id},
		{"deny what nobody asked", as("alice", "chat", "deny", id), 1, "no waiting approval request " + id},
		{"deny a sender with gateway flags", as("alice", "chat", "deny", users["bob"], "--gateway", "https://127.0.0.1:1"), 1, "not an approval id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := run(t, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d naming %q", code, errs, tt.code, tt.want)
			}
		})
	}
	if out := ok(t, as("bob", "chat", "approvals", "--json")...); strings.TrimSpace(out) != "[]" {
		t.Errorf("approvals --json with none waiting: %q", out)
	}
	// Removing someone who is not a member and holds no grant changes nothing.
	if out := ok(t, as("alice", "chat", "agent", "remove", "--conversation", conv, "--agent", users["carol"])...); !strings.Contains(out, "is not a member") || !strings.Contains(out, "nothing to revoke") {
		t.Errorf("remove of a non-member without grants: %q", out)
	}
}
