package daemon

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/internal/ops/opstest"
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
	d := opstest.Start(func(log io.Writer) int {
		return Main(ctx, []string{"--dev", "--data", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json"}, log)
	})
	opsURL := d.URL(t, opstest.MetricsOn)
	if code, body := opstest.Get(t, opsURL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q", code, body)
	}
	kbsURL := d.URL(t, opstest.ListeningOn)
	// Serving means every check passed.
	opstest.Ready(t, opsURL, "store", "sealer", "audit")

	canary := opstest.Canary()
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

	exp := opstest.Metrics(t, opsURL)
	opstest.Absent(t, exp, canary)
	opstest.AtLeastOne(t, exp,
		`chatmcp_kbs_releases_total{decision="granted"}`,
		`chatmcp_kbs_releases_total{decision="denied"}`,
		`chatmcp_http_requests_total{code="200",route="POST /kbs/v1/attest"}`,
		`chatmcp_http_requests_total{code="200",route="PUT /kbs/v1/admin/secrets/{name}"}`,
		`chatmcp_http_requests_total{code="404",route="POST /kbs/v1/attest"}`,
		`chatmcp_http_request_duration_seconds_count{route="POST /kbs/v1/request"}`,
		`chatmcp_audit_append_duration_seconds_count`,
		`chatmcp_audit_commit_entries_count`,
	)
	cancel()
	if code := d.Exit(); code != 0 {
		t.Errorf("Main after cancel = %d", code)
	}
}
