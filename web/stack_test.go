package web_test

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/relay/relaytest"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/web"
)

// startRelay serves a real relay on SQLite over loopback, with a low stamp
// difficulty so first contacts mint quickly.
func startRelay(t testing.TB) string {
	return relaytest.Start(t, nil, relay.Options{DefaultDifficulty: relaytest.Difficulty}).URL
}

// startWeb serves a web app for relayURL on a loopback port and returns
// its launch URL.
func startWeb(t testing.TB, o *web.Options) (launch string, srv *web.Server) {
	t.Helper()
	srv, err := web.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.LaunchURL(ln), srv
}

func newKeypair(t testing.TB, dir, name string) (*wallet.Keypair, string) {
	t.Helper()
	k, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".json")
	if err := k.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return k, path
}

// browserless is an HTTP client with a cookie jar that does not follow
// redirects, for checks a browser would hide.
func browserless(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// get fetches url and returns the status and body.
func get(t testing.TB, c *http.Client, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func post(t testing.TB, c *http.Client, url, contentType, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
