package web_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/web"
)

// TestGroupMembership creates a group from the page, adds and removes a
// member as its creator, denies a stranger's request, and checks that a
// member who is not the creator gets no membership forms and is refused
// when posting one anyway.
func TestGroupMembership(t *testing.T) {
	ctx := context.Background()
	relayURL := startRelay(t)
	dir := t.TempDir()
	alice, _ := newKeypair(t, dir, "alice")
	var others []*wallet.Keypair
	for range 3 {
		w, _ := wallet.Generate(rand.Reader)
		c, err := chat.New(&chat.Options{Relay: relayURL, Wallet: w, Home: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(ctx); err != nil {
			t.Fatal(err)
		}
		others = append(others, w)
	}
	bob, carol, dave := others[0], others[1], others[2]
	launch, _ := startWeb(t, &web.Options{Relay: relayURL, Home: filepath.Join(dir, "home"), Wallet: alice})
	u, _ := url.Parse(launch)
	base := "http://" + u.Host
	c := browserless(t)
	get(t, c, launch)
	_, page, _ := get(t, c, base+"/")
	csrf := csrfMeta.FindStringSubmatch(page)[1]
	form := func(path string, v url.Values) (int, string) {
		v.Set("csrf", csrf)
		code, body := post(t, c, base+path, "application/x-www-form-urlencoded", v.Encode(), nil)
		return code, body
	}
	code, _ := form("/group", url.Values{"members": {bob.Address().String()}})
	if code != http.StatusSeeOther {
		t.Fatalf("create group: %d", code)
	}
	_, page, _ = get(t, c, base+"/")
	group := regexp.MustCompile(`<li data-conversation="([0-9a-f]{32})">\s*<a href="/c/[0-9a-f]+"><span class="kind">Group`).FindStringSubmatch(page)
	if group == nil {
		t.Fatalf("the inbox does not list the group:\n%s", page)
	}
	members := func() int {
		_, page, _ := get(t, c, base+"/c/"+group[1])
		return strings.Count(regexp.MustCompile(`(?s)<ul id="members">.*?</ul>`).FindString(page), "<li")
	}
	if n := members(); n != 2 {
		t.Fatalf("%d members after creation, want 2", n)
	}
	if code, _ := form("/c/"+group[1]+"/members/add", url.Values{"member": {carol.Address().String()}}); code != http.StatusSeeOther || members() != 3 {
		t.Fatalf("adding carol: %d, %d members", code, members())
	}
	if code, _ := form("/c/"+group[1]+"/members/remove", url.Values{"member": {carol.Address().String()}}); code != http.StatusSeeOther || members() != 2 {
		t.Fatalf("removing carol: %d, %d members", code, members())
	}
	if code, body := form("/c/"+group[1]+"/members/add", url.Values{"member": {"not-an-address"}}); code != http.StatusBadRequest || !strings.Contains(body, "Not a wallet address") {
		t.Fatalf("adding a malformed address: %d", code)
	}

	// A stranger's request, denied from the page, is gone.
	dc, err := chat.New(&chat.Options{Relay: relayURL, Wallet: dave, Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.SendDM(ctx, alice.Address(), "buy my stuff"); err != nil {
		t.Fatal(err)
	}
	if _, page, _ := get(t, c, base+"/requests"); !strings.Contains(page, "buy my stuff") {
		t.Fatal("dave's request is not listed")
	}
	if code, _ := form("/requests/deny", url.Values{"peer": {dave.Address().String()}}); code != http.StatusSeeOther {
		t.Fatalf("deny: %d", code)
	}
	if _, page, _ := get(t, c, base+"/requests"); strings.Contains(page, "buy my stuff") || !strings.Contains(page, `id="no-requests"`) {
		t.Fatal("dave's request is still listed after deny")
	}

	// bob's group, seen by alice: no forms, and a forged post is refused.
	bc, err := chat.New(&chat.Options{Relay: relayURL, Wallet: bob, Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	bobs, err := bc.CreateGroup(ctx, []wallet.Address{alice.Address()})
	if err != nil {
		t.Fatal(err)
	}
	_, page, _ = get(t, c, base+"/c/"+bobs)
	if strings.Contains(page, "/members/add") {
		t.Error("a member who is not the creator is offered to add members")
	}
	if code, body := form("/c/"+bobs+"/members/add", url.Values{"member": {carol.Address().String()}}); code != http.StatusBadRequest || !strings.Contains(body, "Not permitted") {
		t.Errorf("alice adding to bob's group: %d, want 400 Not permitted", code)
	}
}
