package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/gwtest"
	"github.com/chatmcp/chatmcp/web"
)

// TestAdminAndAttestation runs the admin pages and the attestation viewer
// against a real development stack: a destructive call waits, shows on
// the page with its arguments and is approved from it; a token is minted,
// attenuated and revoked; the audit log verifies; the gateway's RA-TLS
// evidence is accepted under the stack's policy and rejected, naming the
// check, under the default one.
func TestAdminAndAttestation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := devstack.Start(ctx, &devstack.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	audit := filepath.Join(st.GatewayData, "audit.jsonl")
	launch, _ := startWeb(t, &web.Options{Relay: st.RelayURL, Home: t.TempDir(), Admin: st.Admin, AuditFile: audit})
	u, _ := url.Parse(launch)
	base := "http://" + u.Host
	c := browserless(t)
	get(t, c, launch)
	_, body, _ := get(t, c, base+"/admin")
	csrf := csrfMeta.FindStringSubmatch(body)[1]
	form := func(path string, v url.Values) string {
		t.Helper()
		v.Set("csrf", csrf)
		code, body := post(t, c, base+path, "application/x-www-form-urlencoded", v.Encode(), nil)
		if code != http.StatusOK {
			t.Fatalf("POST %s: %d\n%s", path, code, body)
		}
		return html.UnescapeString(body)
	}

	// A destructive call waits for a person.
	m, err := st.Admin.Mint(ctx, gwclient.MintRequest{Tools: []string{"*"}, TTL: "1h", Subject: "web-test"})
	if err != nil {
		t.Fatal(err)
	}
	hc := gwtest.Client(m.Token, st.Admin.HTTP.Transport)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "web-test"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: st.GatewayURL + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	wrote := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes_write_note", Arguments: map[string]any{"name": "shopping", "text": "milk <b>and</b> eggs"}})
		wrote <- err
	}()
	var page string
	for !strings.Contains(page, `id="approvals"`) {
		if ctx.Err() != nil {
			t.Fatalf("the held call never showed on the admin page:\n%s", page)
		}
		_, page, _ = get(t, c, base+"/admin")
	}
	id := regexp.MustCompile(`name="id" value="([^"]+)"><button type="submit" class="allow">Approve`).FindStringSubmatch(page)
	if id == nil || !strings.Contains(page, "notes_write_note") || !strings.Contains(page, "milk &lt;b&gt;and&lt;/b&gt; eggs") {
		t.Fatalf("the approval does not show the tool and its arguments as text:\n%s", page)
	}
	if shots := os.Getenv("CHATMCP_WEB_SCREENSHOTS"); shots != "" {
		screenshotAdmin(t, launch, c, shots)
	}
	form("/admin/approvals/approve", url.Values{"id": {id[1]}})
	if err := <-wrote; err != nil {
		t.Fatalf("the approved call failed: %v", err)
	}

	// Tokens: mint, attenuate offline, revoke.
	out := form("/admin/tokens/mint", url.Values{"tools": {"notes_read_*"}, "ttl": {"10m"}, "subject": {"reader"}})
	tok := regexp.MustCompile(`<pre id="minted">(cmt1\.[^<]+)</pre>`).FindStringSubmatch(out)
	tokID := regexp.MustCompile(`New token (\S+) \(shown once\)`).FindStringSubmatch(out)
	if tok == nil || tokID == nil {
		t.Fatalf("no minted token shown:\n%s", out)
	}
	if out := form("/admin/tokens/attenuate", url.Values{"token": {tok[1]}, "tools": {"notes_read_note"}, "ttl": {"1m"}}); !strings.Contains(out, `<pre id="derived">cmt1.`) {
		t.Fatalf("no derived token:\n%s", out)
	}
	if out := form("/admin/tokens/revoke", url.Values{"id": {tokID[1]}}); !strings.Contains(out, "Token revoked") {
		t.Fatalf("revocation not confirmed:\n%s", out)
	}
	v := url.Values{"csrf": {csrf}, "token": {tok[1]}}
	if code, _ := post(t, c, base+"/admin/tokens/attenuate", "application/x-www-form-urlencoded", v.Encode(), nil); code != http.StatusBadRequest {
		t.Errorf("attenuating with nothing to narrow: %d, want 400", code)
	}

	// The audit log verifies and filters.
	_, page, _ = get(t, c, base+"/admin?filter=notes_write_note")
	if !strings.Contains(page, `id="audit-ok"`) || !strings.Contains(page, "notes_write_note") {
		t.Fatalf("the audit section is not intact or lacks the call:\n%s", page)
	}

	// The attestation viewer over RA-TLS.
	verify := func(policy string) string {
		return form("/attest", url.Values{"target": {st.GatewayURL}, "policy": {policy}})
	}
	if out := verify(st.PolicyFile); !strings.Contains(out, "Accepted by the policy") || !strings.Contains(out, "Simulated TEE") || !strings.Contains(out, "TLS certificate") {
		t.Fatalf("the gateway's evidence under the dev policy:\n%s", out)
	}
	if out := verify(""); !strings.Contains(out, `<code id="check">not allowed</code>`) {
		t.Fatalf("the gateway's sim evidence under the default policy is not rejected by name:\n%s", out)
	}
}

// screenshotAdmin saves the admin page with a call waiting, in a browser
// given the test client's session cookie.
func screenshotAdmin(t *testing.T, launch string, c *http.Client, dir string) {
	u, _ := url.Parse(launch)
	var cookie *http.Cookie
	for _, ck := range c.Jar.Cookies(&url.URL{Scheme: "http", Host: u.Host}) {
		cookie = ck
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.WindowSize(420, 860))...)
	defer cancelAlloc()
	b, cancelB := chromedp.NewContext(alloc)
	defer cancelB()
	// The session cookie is HttpOnly: set it through the protocol.
	do(t, b, "admin page", setCookie(cookie, u.Host), chromedp.Navigate("http://"+u.Host+"/admin"), chromedp.WaitVisible(chromedp.ID("approvals")))
	png, err := chromedp.Run(b, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "admin.png"), png, 0o644)
}

func setCookie(ck *http.Cookie, host string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		on := true
		_, err := cdp.Call(ctx, t, network.SetCookie, network.SetCookieParams{Name: ck.Name, Value: ck.Value, URL: "http://" + host + "/", HTTPOnly: &on})
		return chromedp.Void{}, err
	}
}
