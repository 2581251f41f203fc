package web_test

import (
	"context"
	"crypto/rand"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/web"
)

// TestTamperedMessageShown: a relay that alters a stored envelope (a row
// changed in its database, as cmd/chatmcp/cli's TestChatWatchTamperRevoke
// does) gets the message shown as rejected, with the failed check, and
// its text never shown; an unaltered message next to it reads normally.
func TestTamperedMessageShown(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ts := httptest.NewUnstartedServer(nil)
	rs, err := relay.New(ctx, db, &relay.Options{Domain: ts.Listener.Addr().String(), DefaultDifficulty: 8})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = rs
	ts.Start()
	t.Cleanup(ts.Close)

	dir := t.TempDir()
	alice, _ := newKeypair(t, dir, "alice")
	bob, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	launch, _ := startWeb(t, &web.Options{Relay: ts.URL, Home: filepath.Join(dir, "home"), Wallet: alice})
	u, _ := url.Parse(launch)
	base := "http://" + u.Host
	c := browserless(t)
	if code, _, _ := get(t, c, launch); code != http.StatusSeeOther { // signs alice in
		t.Fatalf("launch: %d", code)
	}
	bc, err := chat.New(&chat.Options{Relay: ts.URL, Wallet: bob, Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.SendDM(ctx, alice.Address(), "the original text"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE relay_messages SET envelope = REPLACE(envelope, '"sent_at":', '"sent_at":1')`); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.SendDM(ctx, alice.Address(), "an intact message"); err != nil {
		t.Fatal(err)
	}
	conv := envelope.DMID(bob.Address(), alice.Address())
	code, page, _ := get(t, c, base+"/c/"+conv)
	page = html.UnescapeString(page)
	if code != http.StatusOK {
		t.Fatalf("conversation page: %d\n%s", code, page)
	}
	for _, want := range []string{`class="message rejected"`, "Could not be verified, so it is not shown (tampered, forged or unverifiable)",
		"signature does not verify", "an intact message"} {
		if !strings.Contains(page, want) {
			t.Errorf("the conversation page lacks %q", want)
		}
	}
	if strings.Contains(page, "the original text") {
		t.Error("the tampered message's text is shown")
	}
}
