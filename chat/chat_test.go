package chat_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/internal/keyfile"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/relay/relaytest"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/wallet"
)

// startRelay serves a real relay on SQLite over loopback HTTP, with a low
// stamp difficulty so first contacts mint quickly.
func startRelay(t *testing.T) string {
	return relaytest.Start(t, nil, relay.Options{DefaultDifficulty: relaytest.Difficulty}).URL
}

func newWallet(t *testing.T) *wallet.Keypair {
	t.Helper()
	k, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newClient(t *testing.T, relayURL, home string, w *wallet.Keypair) *chat.Client {
	t.Helper()
	c, err := chat.New(&chat.Options{Relay: relayURL, Wallet: w, Home: home})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// login signs each client in, registering its device with the relay: no
// one can write to a wallet before it has.
func login(t *testing.T, cs ...*chat.Client) {
	t.Helper()
	for _, c := range cs {
		if err := c.Login(context.Background()); err != nil {
			t.Fatalf("Login: %v", err)
		}
	}
}

// seen is what a test compares of a delivered message.
type seen struct {
	Folder string
	Sender string
	Text   string
	Err    bool
}

func readAll(t *testing.T, c *chat.Client, o chat.ReadOptions) []seen {
	t.Helper()
	msgs, err := c.ReadAll(context.Background(), o)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	var out []seen
	for _, m := range msgs {
		out = append(out, seen{Folder: m.Folder, Sender: m.Sender.String(), Text: m.Text, Err: m.Err != "" || m.NotForDevice})
	}
	return out
}

func TestNewRequiresOptions(t *testing.T) {
	w := newWallet(t)
	home := t.TempDir()
	for _, tc := range []struct {
		name string
		opts *chat.Options
	}{
		{"nil", nil},
		{"no relay", &chat.Options{Wallet: w, Home: home}},
		{"no wallet", &chat.Options{Relay: "http://127.0.0.1:1", Home: home}},
		{"no home", &chat.Options{Relay: "http://127.0.0.1:1", Wallet: w}},
		{"relay not http", &chat.Options{Relay: "ftp://relay.example", Wallet: w, Home: home}},
		{"relay without host", &chat.Options{Relay: "https://", Wallet: w, Home: home}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := chat.New(tc.opts); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

// TestDeviceKey checks the device key is created once per wallet and home,
// mode 0600, and reloaded; another wallet in the same home gets its own.
func TestDeviceKey(t *testing.T) {
	home := t.TempDir()
	alice, bob := newWallet(t), newWallet(t)
	a1 := newClient(t, "http://127.0.0.1:1", home, alice)
	path := filepath.Join(home, alice.Address().String(), "device.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("device.json mode %04o, want 0600", fi.Mode().Perm())
	}
	a2 := newClient(t, "http://127.0.0.1:1", home, alice)
	if a1.Device().Cert.Device != a2.Device().Cert.Device {
		t.Errorf("second client has device %s, want the saved %s", a2.Device().Cert.Device, a1.Device().Cert.Device)
	}
	if b := newClient(t, "http://127.0.0.1:1", home, bob); b.Device().Cert.Device == a1.Device().Cert.Device {
		t.Error("two wallets share one device")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.New(&chat.Options{Relay: "http://127.0.0.1:1", Wallet: alice, Home: home}); !errors.Is(err, keyfile.ErrPermissions) {
		t.Errorf("New with a world-readable device key = %v, want keyfile.ErrPermissions", err)
	}
}

func TestDirectMessage(t *testing.T) {
	ctx := context.Background()
	url := startRelay(t)
	home := t.TempDir() // one home shared by both users of this machine
	aw, bw := newWallet(t), newWallet(t)
	alice, bob := newClient(t, url, home, aw), newClient(t, url, home, bw)
	login(t, alice, bob)

	sent, err := alice.SendDM(ctx, bw.Address(), "hello bob")
	if err != nil {
		t.Fatalf("SendDM: %v", err)
	}
	if !slices.ContainsFunc(sent.Requested, bw.Address().Equal) {
		t.Errorf("first contact: Requested = %v, want bob (a stranger to alice)", sent.Requested)
	}
	want := []seen{{Folder: relayapi.FolderRequests, Sender: aw.Address().String(), Text: "hello bob"}}
	if diff := cmp.Diff(want, readAll(t, bob, chat.ReadOptions{})); diff != "" {
		t.Errorf("bob's messages (-want +got):\n%s", diff)
	}

	if err := bob.Allow(ctx, aw.Address()); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.SendDM(ctx, aw.Address(), "hi alice"); err != nil {
		t.Fatalf("reply: %v", err)
	}
	if _, err := alice.SendDM(ctx, bw.Address(), "how are you?"); err != nil {
		t.Fatalf("second message: %v", err)
	}
	// A sender's own devices get a copy: alice's inbox is the whole thread.
	from, to := aw.Address().String(), bw.Address().String()
	want = []seen{
		{Folder: relayapi.FolderInbox, Sender: from, Text: "hello bob"},
		{Folder: relayapi.FolderInbox, Sender: to, Text: "hi alice"},
		{Folder: relayapi.FolderInbox, Sender: from, Text: "how are you?"},
	}
	if diff := cmp.Diff(want, readAll(t, alice, chat.ReadOptions{Folder: relayapi.FolderInbox})); diff != "" {
		t.Errorf("alice's inbox (-want +got):\n%s", diff)
	}
	got := readAll(t, bob, chat.ReadOptions{Folder: relayapi.FolderInbox})
	if !slices.Contains(got, seen{Folder: relayapi.FolderInbox, Sender: aw.Address().String(), Text: "how are you?"}) {
		t.Errorf("bob's inbox after allowing alice = %+v, want her second message", got)
	}
	if _, err := alice.SendDM(ctx, aw.Address(), "me"); err == nil {
		t.Error("a direct message to oneself was sent")
	}
}

// TestGroupRemovedMember checks a removed member reads what was sent before
// the removal and nothing sent after it.
func TestGroupRemovedMember(t *testing.T) {
	ctx := context.Background()
	url := startRelay(t)
	home := t.TempDir()
	aw, bw, cw := newWallet(t), newWallet(t), newWallet(t)
	alice, bob, carol := newClient(t, url, home, aw), newClient(t, url, home, bw), newClient(t, url, home, cw)
	login(t, alice, bob, carol)
	for _, c := range []*chat.Client{bob, carol} {
		if err := c.Allow(ctx, aw.Address()); err != nil {
			t.Fatal(err)
		}
	}
	id, err := alice.CreateGroup(ctx, []wallet.Address{bw.Address(), cw.Address()})
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if _, err := alice.Send(ctx, id, "before"); err != nil {
		t.Fatal(err)
	}
	if err := alice.RemoveMember(ctx, id, cw.Address()); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	if _, err := alice.Send(ctx, id, "after"); err != nil {
		t.Fatal(err)
	}
	from := aw.Address().String()
	want := []seen{{Folder: relayapi.FolderInbox, Sender: from, Text: "before"}, {Folder: relayapi.FolderInbox, Sender: from, Text: "after"}}
	if diff := cmp.Diff(want, readAll(t, bob, chat.ReadOptions{Conversation: id})); diff != "" {
		t.Errorf("bob's messages (-want +got):\n%s", diff)
	}
	var carolRead []string
	for _, m := range readAll(t, carol, chat.ReadOptions{}) {
		carolRead = append(carolRead, m.Text)
	}
	if !slices.Contains(carolRead, "before") || slices.Contains(carolRead, "after") {
		t.Errorf("carol read %q; want the message from before her removal and none from after", carolRead)
	}
	if err := carol.RemoveMember(ctx, id, bw.Address()); err == nil {
		t.Error("a removed member removed another")
	}
}
