package web_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/web"
)

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8450", true},
		{"[::1]:8450", true},
		{"127.0.0.2:0", true},
		{"0.0.0.0:8450", false},
		{":8450", false},
		{"localhost:8450", false}, // a name could resolve elsewhere
		{"192.168.1.10:8450", false},
		{"[::]:8450", false},
		{"127.0.0.1", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			if err := web.CheckLoopback(tc.addr); (err == nil) != tc.ok {
				t.Errorf("CheckLoopback(%q) = %v, want ok %v", tc.addr, err, tc.ok)
			}
		})
	}
}

// TestSessionGuards checks the launch secret, the cookie, the CSRF token,
// the Host check and the security headers against a real server.
func TestSessionGuards(t *testing.T) {
	relayURL := startRelay(t)
	dir := t.TempDir()
	_, keyPath := newKeypair(t, dir, "alice")
	launch, _ := startWeb(t, &web.Options{Relay: relayURL, Home: dir})
	u, _ := url.Parse(launch)
	base := "http://" + u.Host
	c := browserless(t)

	if code, body, _ := get(t, c, base+"/"); code != http.StatusUnauthorized || !strings.Contains(body, "Open the link chatmcp web printed") {
		t.Fatalf("GET / without a cookie: %d, want 401 and the page asking for the link", code)
	}
	if code, _, _ := get(t, c, base+"/launch?secret=wrong"); code != http.StatusUnauthorized {
		t.Fatalf("launch with a wrong secret: %d, want 401", code)
	}
	code, _, h := get(t, c, launch)
	if code != http.StatusSeeOther {
		t.Fatalf("launch: %d, want 303", code)
	}
	sc := h.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("session cookie %q lacks %s", sc, want)
		}
	}
	// The link works once: another browser (no cookie) cannot reuse it.
	if code, _, _ := get(t, browserless(t), launch); code != http.StatusUnauthorized {
		t.Fatalf("second use of the launch link: %d, want 401", code)
	}
	code, body, h := get(t, c, base+"/signin")
	if code != http.StatusOK {
		t.Fatalf("GET /signin with the cookie: %d", code)
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %s", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("CSP %q / X-Frame-Options %q", csp, h.Get("X-Frame-Options"))
	}
	if strings.Contains(body, "<script>") {
		t.Error("a page carries an inline script")
	}
	m := csrfMeta.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token in the page")
	}
	csrf := m[1]
	form := url.Values{"keypair": {keyPath}}
	for name, f := range map[string]url.Values{"no token": form, "wrong token": {"keypair": {keyPath}, "csrf": {"x" + csrf}}} {
		if code, _ := post(t, c, base+"/signin/keypair", "application/x-www-form-urlencoded", f.Encode(), nil); code != http.StatusForbidden {
			t.Errorf("sign-in with %s: %d, want 403", name, code)
		}
	}
	if code, _, _ := get(t, c, base+"/"); code != http.StatusSeeOther {
		t.Fatalf("refused sign-ins signed in anyway (GET / = %d)", code)
	}
	// DNS rebinding: the same port under another name is refused.
	req, _ := http.NewRequest(http.MethodGet, base+"/signin", nil)
	req.Host = "evil.example:" + u.Port()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("Host evil.example: %d, want 421", resp.StatusCode)
	}
	form.Set("csrf", csrf)
	if code, body := post(t, c, base+"/signin/keypair", "application/x-www-form-urlencoded", form.Encode(), nil); code != http.StatusSeeOther {
		t.Fatalf("sign-in with the token: %d %s", code, body)
	}
	if code, body, _ := get(t, c, base+"/"); code != http.StatusOK || !strings.Contains(body, "Inbox") {
		t.Fatalf("inbox after sign-in: %d", code)
	}
	// A request without the cookie still gets nothing.
	if code, _ := post(t, browserless(t), base+"/dm", "application/x-www-form-urlencoded", url.Values{"csrf": {csrf}, "to": {"x"}, "text": {"hi"}}.Encode(), nil); code != http.StatusUnauthorized {
		t.Errorf("POST /dm without the cookie: %d, want 401", code)
	}
}

// TestWalletSignInChecksSignatures drives the browser-wallet sign-in over
// HTTP with a wallet key held by the test: a signature by another key is
// refused at each step, and the right ones sign in.
func TestWalletSignInChecksSignatures(t *testing.T) {
	relayURL := startRelay(t)
	dir := t.TempDir()
	k, _ := newKeypair(t, dir, "wallet")
	other, _ := newKeypair(t, dir, "other")
	launch, _ := startWeb(t, &web.Options{Relay: relayURL, Home: dir})
	u, _ := url.Parse(launch)
	base := "http://" + u.Host
	c := browserless(t)
	get(t, c, launch)
	_, body, _ := get(t, c, base+"/signin")
	csrf := csrfMeta.FindStringSubmatch(body)[1]
	hdr := map[string]string{"X-CSRF-Token": csrf}
	call := func(path string, in any) (int, map[string]string) {
		b, _ := json.Marshal(in)
		code, body := post(t, c, base+path, "application/json", string(b), hdr)
		var out map[string]string
		json.Unmarshal([]byte(body), &out)
		return code, out
	}
	sig := func(k *wallet.Keypair, msg string) map[string]string {
		return map[string]string{"signature": base64.StdEncoding.EncodeToString(k.Sign([]byte(msg)))}
	}
	if code, _ := call("/signin/wallet/finish", sig(k, "x")); code != http.StatusConflict {
		t.Fatalf("finish before start: %d, want 409", code)
	}
	code, start := call("/signin/wallet/start", map[string]string{"address": k.Address().String()})
	if code != http.StatusOK || !strings.Contains(start["message"], k.Address().String()) {
		t.Fatalf("start: %d %v", code, start)
	}
	if code, out := call("/signin/wallet/cert", sig(other, start["message"])); code != http.StatusBadRequest || !strings.Contains(out["error"], "does not verify") {
		t.Fatalf("cert signed by another key: %d %v, want 400", code, out)
	}
	code, start = call("/signin/wallet/start", map[string]string{"address": k.Address().String()})
	if code != http.StatusOK {
		t.Fatal(code)
	}
	code, cert := call("/signin/wallet/cert", sig(k, start["message"]))
	if code != http.StatusOK || !strings.Contains(cert["message"], "Sign in to the ChatMCP relay") {
		t.Fatalf("cert: %d %v", code, cert)
	}
	if code, out := call("/signin/wallet/finish", sig(other, cert["message"])); code != http.StatusBadRequest {
		t.Fatalf("login signed by another key: %d %v, want 400", code, out)
	}
	if code, _, _ := get(t, c, base+"/"); code != http.StatusSeeOther {
		t.Fatalf("a refused wallet sign-in signed in (GET / = %d)", code)
	}
	// The refused finish ended the attempt; the whole flow again succeeds.
	_, start = call("/signin/wallet/start", map[string]string{"address": k.Address().String()})
	_, cert = call("/signin/wallet/cert", sig(k, start["message"]))
	if code, out := call("/signin/wallet/finish", sig(k, cert["message"])); code != http.StatusOK {
		t.Fatalf("finish: %d %v", code, out)
	}
	if code, body, _ := get(t, c, base+"/"); code != http.StatusOK || !strings.Contains(body, k.Address().String()) {
		t.Fatalf("inbox after wallet sign-in: %d", code)
	}
}
