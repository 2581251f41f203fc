package web_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/web"
)

// chromium finds Debian's chromium (installed by .ci/run). The browser
// tests do not skip without it: they are how the web app is tested.
func chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install Debian's chromium package (apt-get install -y chromium), as .ci/run does")
	return ""
}

// walletScript is a simulated Wallet Standard wallet holding a test key:
// it registers through the standard's window events and signs with
// WebCrypto's Ed25519, as Phantom's signMessage does.
func walletScript(t *testing.T, k ed25519.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := wallet.AddressFromPublicKey(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`(() => {
  const b = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const key = crypto.subtle.importKey('pkcs8', b(%q), { name: 'Ed25519' }, false, ['sign']);
  const account = { address: %q, publicKey: b(%q), chains: ['solana:mainnet'], features: ['solana:signMessage'] };
  const wallet = {
    version: '1.0.0', name: 'Test Wallet (simulated)', icon: 'data:image/svg+xml;base64,PHN2Zy8+',
    chains: ['solana:mainnet'], accounts: [account],
    features: {
      'standard:connect': { version: '1.0.0', connect: async () => ({ accounts: [account] }) },
      'solana:signMessage': { version: '1.0.0', signMessage: async (...inputs) => Promise.all(inputs.map(async (i) => ({
        signedMessage: i.message,
        signature: new Uint8Array(await crypto.subtle.sign('Ed25519', await key, i.message)),
      }))) },
    },
  };
  const cb = ({ register }) => register(wallet);
  window.addEventListener('wallet-standard:app-ready', (e) => cb(e.detail));
  window.dispatchEvent(new CustomEvent('wallet-standard:register-wallet', { detail: cb }));
})();`, base64.StdEncoding.EncodeToString(der), addr.String(), base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey)))
}

// do runs actions and fails the test naming the step.
func do(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	t.Logf("%s: %s", time.Now().Format("15:04:05.000"), step)
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// waitJS polls a JavaScript condition until it is true.
func waitJS(t *testing.T, ctx context.Context, step, cond string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerHTML`))
		t.Fatalf("%s: waiting for %s: %v\npage: %s", step, cond, err, html)
	}
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func hasText(sel, text string) string {
	q, _ := json.Marshal(text)
	return fmt.Sprintf(`[...document.querySelectorAll(%q)].some((e) => e.textContent === %s)`, sel, q)
}

// TestBrowser drives headless Chromium through the web app on one shared
// stack (an in-process relay, two web servers): alice signs in with a
// keypair file and bob with a simulated Wallet Standard wallet, each in
// their own browser context; alice writes, bob allows her request, they
// exchange messages live, an HTML payload stays text, alice makes a group
// whose unread count updates live on bob's inbox, a request without the
// CSRF token is refused, and the attestation viewer names the failed
// check. With CHATMCP_WEB_SCREENSHOTS=DIR it saves the screenshots of
// docs/web.md there.
func TestBrowser(t *testing.T) {
	exec := chromium(t)
	shots := os.Getenv("CHATMCP_WEB_SCREENSHOTS")
	relayURL := startRelay(t)
	dir := t.TempDir()
	alice, alicePath := newKeypair(t, dir, "alice")
	_, bobPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := wallet.NewKeypair(bobPriv)
	if err != nil {
		t.Fatal(err)
	}
	aliceLaunch, _ := startWeb(t, &web.Options{Relay: relayURL, Home: filepath.Join(dir, "alice-home")})
	bobLaunch, _ := startWeb(t, &web.Options{Relay: relayURL, Home: filepath.Join(dir, "bob-home")})
	aliceBase := aliceLaunch[:strings.Index(aliceLaunch, "/launch")]
	bobBase := bobLaunch[:strings.Index(bobLaunch, "/launch")]

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exec), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(420, 860))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	do(t, browser, "starting Chromium")
	a, cancelA := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancelA()
	b, cancelB := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancelB()

	shot := func(ctx context.Context, name string) {
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// alice signs in with her keypair file.
	do(t, a, "alice opens her link", chromedp.Navigate(aliceLaunch), chromedp.WaitVisible(chromedp.ID("keypair")))
	shot(a, "signin")
	do(t, a, "alice signs in with a keypair file",
		chromedp.SendKeys(chromedp.ID("keypair"), alicePath), chromedp.Click(chromedp.ID("keypair-submit")),
		chromedp.WaitVisible(chromedp.ID("dm-send")))

	// bob signs in with the simulated browser wallet.
	addScript := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: walletScript(t, bobPriv)})
		return chromedp.Void{}, err
	}
	do(t, b, "bob opens his link", addScript, chromedp.Navigate(bobLaunch), chromedp.WaitVisible(chromedp.CSS("button.wallet")))
	do(t, b, "bob signs in with his wallet", chromedp.Click(chromedp.CSS("button.wallet")), chromedp.WaitVisible(chromedp.ID("dm-send")))
	if got := evalJS[string](t, b, `document.getElementById('me').textContent`); got != bob.Address().String() {
		t.Fatalf("bob signed in as %q, want %s", got, bob.Address())
	}

	// alice writes to bob: a stranger, so it goes to his requests with a stamp.
	do(t, a, "alice writes to bob",
		chromedp.SendKeys(chromedp.ID("to"), bob.Address().String()), chromedp.SendKeys(chromedp.ID("dm-text"), "hello bob"),
		chromedp.Click(chromedp.ID("dm-send")), chromedp.WaitVisible(chromedp.ID("messages")))
	waitJS(t, a, "alice sees her message", hasText("#messages .text", "hello bob"))
	do(t, b, "bob opens his requests", chromedp.Navigate(bobBase+"/requests"),
		chromedp.WaitVisible(chromedp.ID("requests")))
	waitJS(t, b, "bob sees alice's request", hasText("#requests .text", "hello bob"))
	if bits := evalJS[string](t, b, `document.getElementById('stamp-bits').textContent`); bits != "8 bits" {
		t.Errorf("stamp cost shown %q, want 8 bits", bits)
	}
	shot(b, "requests")
	do(t, b, "bob allows alice", chromedp.Click(chromedp.CSS("button.allow")), chromedp.WaitVisible(chromedp.ID("conversations")))
	do(t, b, "bob opens the conversation", chromedp.Click(chromedp.CSS("#conversations a")), chromedp.WaitVisible(chromedp.ID("messages")))

	// Live: bob's reply appears on alice's open page without a reload.
	do(t, b, "bob replies", chromedp.SendKeys(chromedp.ID("text"), "hi alice"), chromedp.Click(chromedp.ID("send")), chromedp.WaitVisible(chromedp.ID("messages")))
	waitJS(t, a, "alice sees bob's reply live", hasText("#messages .text", "hi alice"))

	// An HTML payload is text, live and after a reload.
	payload := `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold?</b>`
	do(t, a, "alice sends markup", chromedp.SendKeys(chromedp.ID("text"), payload), chromedp.Click(chromedp.ID("send")), chromedp.WaitVisible(chromedp.ID("messages")))
	waitJS(t, b, "bob receives the payload live", hasText("#messages .text", payload))
	checkInert := func(step string) {
		t.Helper()
		if ok := evalJS[bool](t, b, `!window.__xss && document.querySelectorAll('#messages img, #messages script, #messages b').length === 0`); !ok {
			t.Fatalf("%s: the message's markup became part of the page", step)
		}
	}
	checkInert("live")
	do(t, b, "bob reloads", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("messages")))
	waitJS(t, b, "the payload after a reload", hasText("#messages .text", payload))
	checkInert("reloaded")
	shot(a, "conversation")

	// A request without the CSRF token is refused, even from the page.
	if code := evalJS[float64](t, b, `(() => { const f = new FormData(); f.append('to', '`+alice.Address().String()+`'); f.append('text', 'forged');
		return fetch('/dm', { method: 'POST', body: f }).then((r) => r.status); })()`); code != 403 {
		t.Errorf("POST /dm without the CSRF token: %v, want 403", code)
	}

	// alice creates a group with bob; bob's inbox counts its messages live.
	do(t, a, "alice creates a group", chromedp.Navigate(aliceBase+"/"), chromedp.WaitVisible(chromedp.ID("members")),
		chromedp.SendKeys(chromedp.ID("members"), bob.Address().String()), chromedp.Click(chromedp.ID("group-create")),
		chromedp.WaitVisible(chromedp.ID("messages")))
	group := evalJS[string](t, a, `document.getElementById('messages').dataset.conversation`)
	do(t, a, "alice writes to the group", chromedp.SendKeys(chromedp.ID("text"), "hello group"), chromedp.Click(chromedp.ID("send")), chromedp.WaitVisible(chromedp.ID("messages")))
	do(t, b, "bob opens his inbox", chromedp.Navigate(bobBase+"/"), chromedp.WaitVisible(chromedp.ID("conversations")))
	badge := fmt.Sprintf(`document.querySelector('[data-unread-for="%s"]')`, group)
	waitJS(t, b, "the group shows one unread message", badge+` && !`+badge+`.hidden && `+badge+`.textContent === '1'`)
	do(t, a, "alice writes again", chromedp.SendKeys(chromedp.ID("text"), "still there?"), chromedp.Click(chromedp.ID("send")), chromedp.WaitVisible(chromedp.ID("messages")))
	waitJS(t, b, "the unread count rises live", badge+`.textContent === '2'`)
	shot(b, "inbox")
	do(t, b, "bob opens the group", chromedp.Click(chromedp.CSS(`a[href="/c/`+group+`"]`)), chromedp.WaitVisible(chromedp.ID("messages")))
	waitJS(t, b, "bob reads the group", hasText("#messages .text", "still there?"))
	if n := evalJS[float64](t, b, `document.querySelectorAll('#members li').length`); n != 2 {
		t.Errorf("group members shown: %v, want 2", n)
	}

	// The attestation viewer names the failed check: default policy, sim evidence.
	sa, err := sim.NewAttester(&sim.Options{Measurement: make([]byte, sim.MeasurementSize)})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := sa.Attest(ctx, [attest.ReportDataSize]byte{})
	if err != nil {
		t.Fatal(err)
	}
	evb, _ := json.Marshal(ev)
	evFile := filepath.Join(dir, "evidence.json")
	os.WriteFile(evFile, evb, 0o644)
	polFile := filepath.Join(dir, "allow-sim.yaml")
	os.WriteFile(polFile, []byte("allow: [sim]\n"), 0o644)
	do(t, a, "alice checks evidence", chromedp.Navigate(aliceBase+"/attest"), chromedp.WaitVisible(chromedp.ID("target")),
		chromedp.SendKeys(chromedp.ID("target"), evFile), chromedp.Click(chromedp.ID("verify")), chromedp.WaitVisible(chromedp.ID("verdict")))
	if check := evalJS[string](t, a, `document.getElementById('check').textContent`); check != string(attest.CheckNotAllowed) {
		t.Errorf("the rejection names check %q, want %q", check, attest.CheckNotAllowed)
	}
	shot(a, "attest-rejected")
	do(t, a, "alice checks it under a policy allowing sim", chromedp.SendKeys(chromedp.ID("policy"), polFile),
		chromedp.Click(chromedp.ID("verify")), chromedp.WaitVisible(chromedp.ID("claims")))
	if v := evalJS[string](t, a, `document.getElementById('verdict').textContent`); v != "Accepted by the policy" {
		t.Errorf("verdict %q", v)
	}
	shot(a, "attest")
}
