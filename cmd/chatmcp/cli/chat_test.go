package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/relay/relaytest"
	"github.com/chatmcp/chatmcp/store"
)

// run executes chatmcp in-process and returns exit code, stdout, stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

// ok runs chatmcp and fails the test unless it exits 0.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := run(t, args...)
	if code != 0 {
		t.Fatalf("chatmcp %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func startTestRelay(t *testing.T) string {
	url, _ := startTestRelayDB(t)
	return url
}

func startTestRelayDB(t *testing.T) (string, *store.DB) {
	r := relaytest.Start(t, nil, relay.Options{DefaultDifficulty: relaytest.Difficulty})
	return r.URL, r.DB
}

func TestChatCLI(t *testing.T) {
	url := startTestRelay(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home") // one home shared by all users of this machine
	users := map[string]string{}
	for _, name := range []string{"alice", "bob", "carol"} {
		file := filepath.Join(dir, name+".json")
		users[name] = strings.TrimSpace(ok(t, "wallet", "new", "-o", file))
		if got := strings.TrimSpace(ok(t, "wallet", "address", file)); got != users[name] {
			t.Fatalf("wallet address = %q, want %q", got, users[name])
		}
	}
	as := func(name string, args ...string) []string {
		return append(args, "--relay", url, "--wallet", filepath.Join(dir, name+".json"), "--home", home)
	}
	if code, _, errs := run(t, "wallet", "new", "-o", filepath.Join(dir, "alice.json")); code != ExitUsage || !strings.Contains(errs, "refusing to overwrite") {
		t.Fatalf("overwrite: exit %d %s", code, errs)
	}

	ok(t, as("alice", "chat", "login")...)
	ok(t, as("bob", "chat", "login")...)
	if code, _, errs := run(t, as("alice", "chat", "send", "--to", users["carol"], "too early")...); code != ExitUsage || !strings.Contains(errs, "has no devices") {
		t.Fatalf("sending to a user who never signed in: exit %d %s", code, errs)
	}
	ok(t, as("carol", "chat", "login")...)
	ok(t, as("alice", "chat", "send", "--to", users["bob"], "hello bob")...)
	if out := ok(t, as("bob", "chat", "read")...); strings.Contains(out, "hello bob") {
		t.Fatalf("bob's inbox shows a request before allow: %s", out)
	}
	if out := ok(t, as("bob", "chat", "requests")...); !strings.Contains(out, users["alice"]+" (request): hello bob") {
		t.Fatalf("bob's requests: %q", out)
	}
	ok(t, as("bob", "chat", "allow", users["alice"])...)
	if out := ok(t, as("bob", "chat", "read")...); !strings.Contains(out, users["alice"]+": hello bob") {
		t.Fatalf("bob's inbox after allow: %q", out)
	}
	ok(t, as("bob", "chat", "send", "--to", users["alice"], "hi", "alice")...)

	gid := strings.TrimSpace(ok(t, as("alice", "chat", "group", "create", "--members", users["bob"]+","+users["carol"])...))
	if len(gid) != 32 {
		t.Fatalf("group create printed %q, want a conversation ID", gid)
	}
	// Carol has not allowed alice: the group waits in her requests.
	if out := ok(t, as("carol", "chat", "conversations")...); !strings.Contains(out, gid+" (request)") {
		t.Fatalf("carol's conversations: %q, want the group as a request", out)
	}
	if out := ok(t, as("bob", "chat", "conversations")...); !strings.Contains(out, gid+"\n") {
		t.Fatalf("bob's conversations: %q, want the group (he allowed alice)", out)
	}
	ok(t, as("alice", "chat", "send", "--conversation", gid, "welcome")...)
	ok(t, as("alice", "chat", "group", "remove", "--conversation", gid, users["carol"])...)
	ok(t, as("alice", "chat", "send", "--conversation", gid, "carol is gone")...)

	var msgs []chat.Message
	out := ok(t, as("bob", "chat", "read", "--conversation", gid, "--json")...)
	if err := json.Unmarshal([]byte(out), &msgs); err != nil {
		t.Fatalf("read --json: %v: %s", err, out)
	}
	if len(msgs) != 2 || msgs[0].Text != "welcome" || msgs[1].Text != "carol is gone" || msgs[1].Sender.String() != users["alice"] {
		t.Fatalf("bob's group messages: %+v", msgs)
	}
	out = ok(t, as("carol", "chat", "read", "--conversation", gid, "--json")...)
	msgs = nil
	json.Unmarshal([]byte(out), &msgs)
	if len(msgs) != 1 || msgs[0].Text != "welcome" {
		t.Fatalf("carol after removal sees %+v", msgs)
	}

	ok(t, as("carol", "chat", "send", "--to", users["bob"], "buy now")...)
	ok(t, as("bob", "chat", "deny", users["carol"])...)
	ok(t, as("carol", "chat", "send", "--to", users["bob"], "buy now!!")...)
	if out := ok(t, as("bob", "chat", "requests")...) + ok(t, as("bob", "chat", "read")...); strings.Contains(out, "buy now") {
		t.Fatalf("denied sender delivered: %s", out)
	}

	devs := ok(t, as("alice", "chat", "devices")...)
	if !strings.Contains(devs, "(this device)") {
		t.Fatalf("devices: %s", devs)
	}

	// Errors: one line, non-zero exit.
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{as("carol", "chat", "send", "--conversation", gid, "let me in"), ExitRejected, "not a member"},
		{as("alice", "chat", "send", "--conversation", strings.Repeat("ab", 16), "x"), ExitRejected, "unknown conversation"},
		{as("alice", "chat", "send", "--to", "not-an-address", "x"), ExitInvalid, "invalid wallet address"},
		{as("alice", "chat", "send", "x"), ExitUsage, "exactly one of --to and --conversation"},
		{as("alice", "chat", "group", "create"), ExitUsage, "--members is required"},
		{as("bob", "chat", "group", "remove", "--conversation", gid, users["alice"]), ExitRejected, "only the group's creator"},
		{[]string{"chat", "read", "--wallet", filepath.Join(dir, "alice.json"), "--home", home}, ExitUsage, "--relay URL is required"},
		{[]string{"chat", "read", "--relay", "http://127.0.0.1:1", "--wallet", filepath.Join(dir, "alice.json"), "--home", home}, ExitUsage, "relay unreachable"},
	} {
		t.Run(strings.Join(tt.args[:3], " "), func(t *testing.T) {
			code, _, errs := run(t, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.want) || strings.Count(strings.TrimSpace(errs), "\n") > 1 {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errs, tt.code, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(home, users["alice"], "device.json")); err != nil {
		t.Fatalf("alice's device state not under --home: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestChatWatchTamperRevoke(t *testing.T) {
	url, db := startTestRelayDB(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	users := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		users[name] = strings.TrimSpace(ok(t, "wallet", "new", "-o", filepath.Join(dir, name+".json")))
	}
	as := func(name string, args ...string) []string {
		return append(args, "--relay", url, "--wallet", filepath.Join(dir, name+".json"), "--home", home)
	}
	ok(t, as("bob", "chat", "login")...)
	ok(t, as("bob", "chat", "allow", users["alice"])...)

	// watch prints messages live until its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int)
	go func() {
		done <- Main(ctx, as("bob", "chat", "watch"), &Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: out, Getenv: func(string) string { return "" }})
	}()
	ok(t, as("alice", "chat", "send", "--to", users["bob"], "live hello")...)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), users["alice"]+": live hello") {
		if time.Now().After(deadline) {
			t.Fatalf("watch output: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("watch exit %d: %s", code, out.String())
	}

	// A relay that alters a stored envelope is caught: read prints the
	// rejection and exits 2.
	if _, err := db.Exec(context.Background(), `UPDATE relay_messages SET envelope = REPLACE(envelope, '"sent_at":', '"sent_at":1')`); err != nil {
		t.Fatal(err)
	}
	code, stdout, errs := run(t, as("bob", "chat", "read")...)
	if code != ExitInvalid || !strings.Contains(stdout, "[rejected: envelope: signature does not verify") || !strings.Contains(errs, "1 message(s) rejected") {
		t.Fatalf("tampered read: exit %d\n%s%s", code, stdout, errs)
	}

	// Revoke a second device of bob's from the first.
	home2 := filepath.Join(dir, "home2")
	ok(t, "chat", "login", "--relay", url, "--wallet", filepath.Join(dir, "bob.json"), "--home", home2)
	devs := ok(t, as("bob", "chat", "devices")...)
	var other string
	for _, line := range strings.Split(strings.TrimSpace(devs), "\n") {
		if !strings.Contains(line, "(this device)") {
			other = strings.Fields(line)[0]
		}
	}
	if other == "" {
		t.Fatalf("devices: %s", devs)
	}
	ok(t, as("bob", "chat", "devices", "revoke", other)...)
	if out := ok(t, as("bob", "chat", "devices")...); !strings.Contains(out, other+"  created") || !strings.Contains(out, "revoked") {
		t.Fatalf("devices after revoke: %s", out)
	}
	code, _, errs = run(t, "chat", "read", "--relay", url, "--wallet", filepath.Join(dir, "bob.json"), "--home", home2)
	if code != ExitRejected || !strings.Contains(errs, "revoked") {
		t.Fatalf("revoked device reading: exit %d %s", code, errs)
	}
}
