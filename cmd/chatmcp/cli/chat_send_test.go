package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestChatSendAndEmptyListings: a send that lands in the recipient's
// requests (not yet accepted, or denied: the relay does not tell the sender
// which) says so instead of a bare "sent", and empty listings print a line
// saying they are empty instead of nothing.
func TestChatSendAndEmptyListings(t *testing.T) {
	url := startTestRelay(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	users := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		users[name] = strings.TrimSpace(ok(t, "wallet", "new", "-o", filepath.Join(dir, name+".json")))
	}
	as := func(name string, args ...string) []string {
		return append(args, "--relay", url, "--wallet", filepath.Join(dir, name+".json"), "--home", home)
	}
	ok(t, as("alice", "chat", "login")...)
	ok(t, as("bob", "chat", "login")...)

	for _, tt := range []struct {
		args []string
		want string
	}{
		{as("bob", "chat", "read"), "your inbox is empty"},
		{as("bob", "chat", "requests"), "no requests"},
		{as("bob", "chat", "read", "--after", "7"), "no messages after sequence number 7"},
	} {
		if out := ok(t, tt.args...); !strings.HasPrefix(out, tt.want) {
			t.Errorf("chatmcp %s printed %q, want a line starting %q", strings.Join(tt.args[:3], " "), out, tt.want)
		}
	}

	notAccepted := users["bob"] + " has not accepted you: the message went to their requests"
	out := ok(t, as("alice", "chat", "send", "--to", users["bob"], "hello bob")...)
	if !strings.HasPrefix(out, "sent ") || !strings.Contains(out, notAccepted) {
		t.Errorf("send to a stranger printed %q, want it to say %q", out, notAccepted)
	}
	ok(t, as("bob", "chat", "deny", users["alice"])...)
	if out := ok(t, as("alice", "chat", "send", "--to", users["bob"], "hello again")...); !strings.Contains(out, notAccepted) {
		t.Errorf("send to someone who denied the sender printed %q, want %q", out, notAccepted)
	}
	ok(t, as("bob", "chat", "allow", users["alice"])...)
	if out := ok(t, as("alice", "chat", "send", "--to", users["bob"], "allowed now")...); strings.Contains(out, "has not accepted") {
		t.Errorf("send to someone who allowed the sender printed %q", out)
	}
	if out := ok(t, as("bob", "chat", "read")...); !strings.Contains(out, "allowed now") || strings.Contains(out, "inbox is empty") {
		t.Errorf("bob's inbox: %q", out)
	}
}
