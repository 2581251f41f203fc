package daemon

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/kbsclient"
)

// TestMainMetrics runs chatmcp-kbs with --metrics-listen, releases a secret
// whose value and name carry a canary, is refused one, and checks /healthz,
// /readyz and /metrics: the families are there with counts, the canary is
// not.
func TestMainMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"--dev", "--data", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json"}, pw)
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
	if code, body := httpGet(t, opsURL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q", code, body)
	}
	kbsURL := wait("listening on ")
	// Serving means every check passed.
	if code, body := httpGet(t, opsURL+"/readyz"); code != http.StatusOK || !strings.Contains(body, "[+]store ok") || !strings.Contains(body, "[+]sealer ok") || !strings.Contains(body, "[+]audit ok") {
		t.Errorf("/readyz once serving = %d %q, want 200 with store, sealer, audit", code, body)
	}

	b := make([]byte, 8)
	rand.Read(b)
	canary := "canary" + hex.EncodeToString(b)
	tok, err := os.ReadFile(filepath.Join(dir, FileAdminToken))
	if err != nil {
		t.Fatal(err)
	}
	ac := &kbsclient.AdminClient{BaseURL: kbsURL, Token: strings.TrimSpace(string(tok))}
	if _, err := ac.Put(ctx, canary, []byte("value-"+canary), "allow: [sim]\n"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	att, err := sim.NewAttester(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &kbsclient.Client{BaseURL: kbsURL, Attester: att}
	if v, err := c.Fetch(ctx, canary); err != nil || string(v) != "value-"+canary {
		t.Fatalf("Fetch = %q, %v", v, err)
	}
	if _, err := c.Fetch(ctx, canary+"-missing"); err == nil {
		t.Fatal("Fetch of a missing secret succeeded")
	}

	code, exp := httpGet(t, opsURL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	if strings.Contains(exp, canary) {
		t.Errorf("the canary appears in the metrics exposition")
	}
	for _, series := range []string{
		`chatmcp_kbs_releases_total{decision="granted"}`,
		`chatmcp_kbs_releases_total{decision="denied"}`,
		`chatmcp_http_requests_total{code="200",route="POST /kbs/v1/attest"}`,
		`chatmcp_http_requests_total{code="200",route="PUT /kbs/v1/admin/secrets/{name}"}`,
		`chatmcp_http_requests_total{code="404",route="POST /kbs/v1/attest"}`,
		`chatmcp_http_request_duration_seconds_count{route="POST /kbs/v1/request"}`,
		`chatmcp_audit_append_duration_seconds_count`,
		`chatmcp_audit_commit_entries_count`,
	} {
		if v := sample(exp, series); v < 1 {
			t.Errorf("%s = %v, want at least 1", series, v)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("Main after cancel = %d", code)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sample returns the value of series in a text exposition, or -1.
func sample(exp, series string) float64 {
	for _, l := range strings.Split(exp, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
