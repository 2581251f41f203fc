package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/gateway/daemon"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
)

// lockedBuffer is a stderr several goroutines may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// gatewayReplica is one chatmcp-gateway process, run through daemon.Main.
type gatewayReplica struct {
	dir    string
	addr   string
	stderr *lockedBuffer
	ready  chan string
	exited chan struct{} // closed when Run returned, with err set
	err    error
}

// launchGateway starts daemon.Main with a config in dir (extra YAML is
// appended); waitGateway waits for it to listen.
func launchGateway(t *testing.T, dir, upstreamURL, extra string) *gatewayReplica {
	t.Helper()
	cfg := filepath.Join(dir, "gw.yaml")
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata: ./data\nupstreams:\n  up:\n    url: %s\n%s", upstreamURL, extra)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &gatewayReplica{dir: dir, stderr: &lockedBuffer{}, ready: make(chan string, 1), exited: make(chan struct{})}
	go func() {
		defer close(r.exited)
		r.err = exitErr(daemon.Main(ctx, []string{"--config", cfg, "--dev"}, r.stderr, daemon.Deps{
			Ready: func(a net.Addr) { r.ready <- a.String() },
		}))
	}()
	t.Cleanup(func() {
		cancel()
		<-r.exited
		if r.err != nil && r.addr != "" {
			t.Errorf("replica in %s: %v", dir, r.err)
		}
	})
	return r
}

// waitGateway waits for a launched replica to listen.
func waitGateway(t *testing.T, r *gatewayReplica) {
	t.Helper()
	select {
	case r.addr = <-r.ready:
	case <-r.exited:
		t.Fatalf("replica in %s exited before serving: %v\nstderr:\n%s", r.dir, r.err, r.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("replica in %s did not start\nstderr:\n%s", r.dir, r.stderr.String())
	}
}

// TestRunReplicasStartAtOncePostgres starts four gateway replicas at the
// same moment on one fresh PostgreSQL database (issue 8, finding 11): all
// must come up, and the schema must be recorded once.
func TestRunReplicasStartAtOncePostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	up := newUpstream(t)
	const n = 4
	var rs []*gatewayReplica
	for i := 0; i < n; i++ {
		rs = append(rs, launchGateway(t, t.TempDir(), up.http.URL, "database: "+dsn+"\n"))
	}
	for _, r := range rs {
		waitGateway(t, r)
	}
	checkSchema(t, dsn, "gateway", "[1]")
}

// checkSchema compares the versions schema_migrations records for
// component with want.
func checkSchema(t *testing.T, dsn, component, want string) {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(context.Background(), `SELECT version FROM schema_migrations WHERE component = ? ORDER BY version`, component)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if fmt.Sprint(got) != want {
		t.Fatalf("schema_migrations for %s = %v, want %s", component, got, want)
	}
}

// gatewayClient talks to replicas of a --dev gateway; the RA-TLS
// certificate is checked elsewhere, this test is about revocations.
var gatewayClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

func adminPost(t *testing.T, addr, adminToken, path, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "https://"+addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := gatewayClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// tokenStatus is the status a replica answers a token-protected request
// with: 401 when it refuses the token.
func tokenStatus(t *testing.T, addr, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+gateway.PathCredentials, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := gatewayClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// startGatewayPair starts replica A, then replica B with A's token key and
// admin token (as an operator deploys replicas), both on dsn.
func startGatewayPair(t *testing.T, dsn, extraB string) (a, b *gatewayReplica, adminToken string) {
	t.Helper()
	up := newUpstream(t)
	a = launchGateway(t, t.TempDir(), up.http.URL, "database: "+dsn+"\n")
	waitGateway(t, a)
	bdir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bdir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"token.key", "admin.token"} {
		data, err := os.ReadFile(filepath.Join(a.dir, "data", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bdir, "data", f), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if f == "admin.token" {
			adminToken = strings.TrimSpace(string(data))
		}
	}
	b = launchGateway(t, bdir, up.http.URL, "database: "+dsn+"\n"+extraB)
	waitGateway(t, b)
	return a, b, adminToken
}

// TestReplicasRevocationPostgres revokes a token through replica A's admin
// API and expects replica B, on the same PostgreSQL database, to refuse it
// within seconds (issue 8, finding 12): through NOTIFY with the reconcile
// too far away to help, and through the reconcile with LISTEN off.
func TestReplicasRevocationPostgres(t *testing.T) {
	cases := []struct{ name, extraB string }{
		{"notify", "revocations:\n  reconcile: 1m\n  max_staleness: 2m\n"},
		{"reconcile only", "revocations:\n  reconcile: 200ms\n  listen: false\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dsn := storetest.PostgresDSN(t)
			a, b, admin := startGatewayPair(t, dsn, c.extraB)
			resp := adminPost(t, a.addr, admin, "/admin/v1/tokens", `{"tools":["up_*"],"ttl":"1h","subject":"alice"}`)
			var m gateway.MintResponse
			if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("mint on A: %d %v", resp.StatusCode, err)
			}
			resp.Body.Close()
			for _, r := range []*gatewayReplica{a, b} {
				if st := tokenStatus(t, r.addr, m.Token); st == http.StatusUnauthorized {
					t.Fatalf("replica %s refuses a fresh token", r.dir)
				}
			}
			start := time.Now()
			resp = adminPost(t, a.addr, admin, "/admin/v1/tokens/"+m.ID+"/revoke", "")
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("revoke on A: %d", resp.StatusCode)
			}
			if st := tokenStatus(t, a.addr, m.Token); st != http.StatusUnauthorized {
				t.Fatalf("replica A still accepts the token it revoked (%d)", st)
			}
			deadline := start.Add(10 * time.Second)
			for tokenStatus(t, b.addr, m.Token) != http.StatusUnauthorized {
				if time.Now().After(deadline) {
					t.Fatalf("replica B still accepts the revoked token after 10s\nB stderr:\n%s", b.stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("replica B refused %s after revocation on A", time.Since(start))
		})
	}
}

// TestConfigStorage checks the database and revocations keys: defaults,
// and each refusal naming its key.
func TestConfigStorage(t *testing.T) {
	const ups = "upstreams:\n  a:\n    url: http://127.0.0.1:1/mcp\n"
	cfg, err := gateway.ParseConfig([]byte(ups))
	if err != nil {
		t.Fatal(err)
	}
	rc := cfg.Revocations
	if cfg.Database != "" || time.Duration(rc.Reconcile) != 2*time.Second || time.Duration(rc.MaxStaleness) != 10*time.Second || rc.Listen != nil {
		t.Fatalf("defaults: database %q, revocations %+v", cfg.Database, rc)
	}
	cases := []struct{ name, yaml, want string }{
		{"sqlite path as database", "database: ./gw.db\n", "database: must be a postgres:// DSN"},
		{"reconcile too short", "revocations:\n  reconcile: 10ms\n", "revocations.reconcile"},
		{"staleness below reconcile", "revocations:\n  reconcile: 5s\n  max_staleness: 5s\n", "revocations.max_staleness"},
		{"staleness too long", "revocations:\n  max_staleness: 1h\n", "revocations.max_staleness"},
		{"unknown revocations key", "revocations:\n  interval: 1s\n", "interval"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := gateway.ParseConfig([]byte(c.yaml + ups))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}
