package relay_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/relay/daemon"
	"github.com/chatmcp/chatmcp/wallet"
)

// TestMainMetrics runs chatmcp-relay with --metrics-listen, has bob watch
// live while alice sends him a message carrying a canary, and checks
// /healthz, /readyz and /metrics: the families are there with counts, the
// canary is not.
func TestMainMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- daemon.Main(ctx, []string{"--dev", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json"}, pw)
		pw.Close()
	}()
	lines := map[string]chan string{"metrics on ": make(chan string, 1), "listening on ": make(chan string, 1)}
	go func() {
		re := regexp.MustCompile(`(metrics on |listening on )(http://\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				lines[m[1]] <- m[2]
			}
		}
	}()
	wait := func(what string) string {
		select {
		case u := <-lines[what]:
			return u
		case code := <-done:
			t.Fatalf("Main exited with %d before %q", code, what)
		case <-time.After(30 * time.Second):
			t.Fatalf("no %q line", what)
		}
		return ""
	}
	opsURL := wait("metrics on ")
	if code, body := get(t, opsURL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q", code, body)
	}
	url := wait("listening on ")
	if code, body := get(t, opsURL+"/readyz"); code != http.StatusOK || !strings.Contains(body, "[+]store ok") || !strings.Contains(body, "[+]fanout ok") {
		t.Errorf("/readyz once serving = %d %q, want 200 with store and fanout", code, body)
	}

	b := make([]byte, 8)
	rand.Read(b)
	canary := "CANARY-" + hex.EncodeToString(b)
	newClient := func() (*chat.Client, *wallet.Keypair) {
		w, _ := wallet.Generate(rand.Reader)
		c, err := chat.New(&chat.Options{Relay: url, Wallet: w, Home: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return c, w
	}
	ac, aw := newClient()
	bc, bw := newClient()
	if err := bc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bc.Allow(ctx, aw.Address()); err != nil {
		t.Fatal(err)
	}
	got := make(chan chat.Message, 1)
	go bc.Watch(ctx, 0, func(m chat.Message) error { got <- m; return nil })
	// The gauge itself says when the watcher is live.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, exp := get(t, opsURL+"/metrics")
		if metricValue(exp, "chatmcp_relay_watchers") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("chatmcp_relay_watchers never reached 1")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := ac.SendDM(ctx, bw.Address(), "hello "+canary); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Text != "hello "+canary {
			t.Fatalf("watched %q (err %q)", m.Text, m.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no live delivery")
	}

	code, exp := get(t, opsURL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	if strings.Contains(exp, canary) || strings.Contains(exp, aw.Address().String()) || strings.Contains(exp, bw.Address().String()) {
		t.Errorf("the canary or a wallet address appears in the metrics exposition")
	}
	for _, series := range []string{
		"chatmcp_relay_messages_total",
		"chatmcp_relay_deliveries_total",
		"chatmcp_relay_watchers",
		`chatmcp_http_requests_total{code="201",route="POST /v1/messages"}`,
		`chatmcp_http_requests_total{code="200",route="POST /v1/auth/login"}`,
		`chatmcp_http_request_duration_seconds_count{route="PUT /v1/consent"}`,
	} {
		if v := metricValue(exp, series); v < 1 {
			t.Errorf("%s = %v, want at least 1", series, v)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("Main after cancel = %d", code)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue returns the value of series in a text exposition, or -1.
func metricValue(exp, series string) float64 {
	for _, l := range strings.Split(exp, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}
