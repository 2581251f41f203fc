package web_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/web"
)

// TestHistoryAndStates: a message sealed before this device existed shows
// as not encrypted to it; a request is allowed from the page; a long
// conversation pages back; the inbox counts unread messages and a visit
// clears them.
func TestHistoryAndStates(t *testing.T) {
	ctx := context.Background()
	relayURL := startRelay(t)
	dir := t.TempDir()
	alice, _ := newKeypair(t, dir, "alice")
	bob, _ := wallet.Generate(rand.Reader)
	newClient := func(w *wallet.Keypair, home string) *chat.Client {
		c, err := chat.New(&chat.Options{Relay: relayURL, Wallet: w, Home: home})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// alice's other device (the CLI on another machine) gets bob's first
	// message; the web's device does not exist yet.
	newClient(alice, t.TempDir())
	bc := newClient(bob, t.TempDir())
	if _, err := bc.SendDM(ctx, alice.Address(), "before your browser existed"); err != nil {
		t.Fatal(err)
	}
	launch, _ := startWeb(t, &web.Options{Relay: relayURL, Home: filepath.Join(dir, "home"), Wallet: alice})
	u, _ := url.Parse(launch)
	base := "http://" + u.Host
	c := browserless(t)
	get(t, c, launch)
	conv := envelope.DMID(alice.Address(), bob.Address())

	_, page, _ := get(t, c, base+"/requests")
	if !strings.Contains(page, "Not encrypted to this device") {
		t.Fatalf("the early message is not marked as not encrypted to this device:\n%s", page)
	}
	csrf := csrfMeta.FindStringSubmatch(page)[1]
	if code, _ := post(t, c, base+"/requests/allow", "application/x-www-form-urlencoded", url.Values{"csrf": {csrf}, "peer": {bob.Address().String()}}.Encode(), nil); code != http.StatusSeeOther {
		t.Fatalf("allow: %d", code)
	}
	const n = 55
	for i := 1; i <= n; i++ {
		if _, err := bc.SendDM(ctx, alice.Address(), fmt.Sprintf("message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	unread := regexp.MustCompile(`data-unread-for="` + conv + `" *(hidden)? aria-label="(\d+) unread"`)
	var m []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the inbox never counted %d unread messages (last: %v)", n+1, m)
		}
		_, page, _ = get(t, c, base+"/")
		if m = unread.FindStringSubmatch(page); m != nil && m[2] == fmt.Sprint(n+1) {
			break // the watcher has seen all of them (the first one too)
		}
		if m == nil {
			t.Fatalf("the inbox does not list the conversation:\n%s", page)
		}
	}
	_, page, _ = get(t, c, base+"/c/"+conv)
	page = html.UnescapeString(page)
	if got := strings.Count(page, `<li class="message`); got != 50 {
		t.Errorf("the conversation shows %d messages, want the last 50", got)
	}
	if !strings.Contains(page, "message 55") || strings.Contains(page, "message 5<") {
		t.Error("the first page is not the newest 50 messages")
	}
	earlier := regexp.MustCompile(`href="(/c/[0-9a-f]+\?before=\d+)" id="earlier"`).FindStringSubmatch(page)
	if earlier == nil {
		t.Fatal("no link to earlier messages")
	}
	_, older, _ := get(t, c, base+earlier[1])
	older = html.UnescapeString(older)
	if got := strings.Count(older, `<li class="message`); got != n+1-50 || !strings.Contains(older, "message 5<") || !strings.Contains(older, "Latest messages") {
		t.Errorf("the earlier page shows %d messages, want %d ending with message 5", got, n+1-50)
	}
	if _, page, _ = get(t, c, base+"/"); unread.FindStringSubmatch(page)[2] != "0" {
		t.Errorf("unread after reading: %s", unread.FindStringSubmatch(page)[2])
	}
}
