package relay_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/internal/ops/opstest"
	"github.com/chatmcp/chatmcp/relay/daemon"
	"github.com/chatmcp/chatmcp/relay/relaytest"
)

// TestMainMetrics runs chatmcp-relay with --metrics-listen, has bob watch
// live while alice sends him a message carrying a canary, and checks
// /healthz, /readyz and /metrics: the families are there with counts, the
// canary is not.
func TestMainMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := opstest.Start(func(log io.Writer) int {
		return daemon.Main(ctx, []string{"--dev", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json"}, log)
	})
	opsURL := d.URL(t, opstest.MetricsOn)
	if code, body := opstest.Get(t, opsURL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q", code, body)
	}
	url := d.URL(t, opstest.ListeningOn)
	opstest.Ready(t, opsURL, "store", "fanout")

	canary := opstest.Canary()
	ac, aw := relaytest.NewClient(t, url)
	bc, bw := relaytest.NewClient(t, url)
	if err := bc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bc.Allow(ctx, aw.Address()); err != nil {
		t.Fatal(err)
	}
	got := make(chan chat.Message, 1)
	go bc.Watch(ctx, 0, func(m chat.Message) error { got <- m; return nil })
	// The gauge itself says when the watcher is live.
	opstest.WaitValue(t, opsURL, "chatmcp_relay_watchers", 1)
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

	exp := opstest.Metrics(t, opsURL)
	opstest.Absent(t, exp, canary, aw.Address().String(), bw.Address().String())
	opstest.AtLeastOne(t, exp,
		"chatmcp_relay_messages_total",
		"chatmcp_relay_deliveries_total",
		"chatmcp_relay_watchers",
		`chatmcp_http_requests_total{code="201",route="POST /v1/messages"}`,
		`chatmcp_http_requests_total{code="200",route="POST /v1/auth/login"}`,
		`chatmcp_http_request_duration_seconds_count{route="PUT /v1/consent"}`,
	)
	cancel()
	if code := d.Exit(); code != 0 {
		t.Errorf("Main after cancel = %d", code)
	}
}
