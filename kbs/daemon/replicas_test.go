package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/kbs"
	"github.com/chatmcp/chatmcp/kbsapi"
	"github.com/chatmcp/chatmcp/kbsclient"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
)

// kbsReplica is one chatmcp-kbs run through Run.
type kbsReplica struct {
	dir    string
	url    string
	ready  chan net.Addr
	exited chan struct{} // closed when Run returned, with err set
	err    error
}

// launchKBS starts Run on dsn with its own data directory holding
// sealingKey (every replica needs the same one).
func launchKBS(t *testing.T, dsn string, sealingKey []byte) *kbsReplica {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileSealingKey), sealingKey, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &kbsReplica{dir: dir, ready: make(chan net.Addr, 1), exited: make(chan struct{})}
	go func() {
		defer close(r.exited)
		r.err = Run(ctx, &Options{Listen: "127.0.0.1:0", Data: dir, DB: dsn, Dev: true, Stderr: io.Discard,
			Ready: func(a net.Addr) { r.ready <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		<-r.exited
		if r.err != nil && r.url != "" {
			t.Errorf("replica in %s: %v", dir, r.err)
		}
	})
	return r
}

func (r *kbsReplica) wait(t *testing.T) {
	t.Helper()
	select {
	case a := <-r.ready:
		r.url = "http://" + a.String()
	case <-r.exited:
		t.Fatalf("replica in %s exited before serving: %v", r.dir, r.err)
	case <-time.After(60 * time.Second):
		t.Fatalf("replica in %s did not start", r.dir)
	}
}

func (r *kbsReplica) admin(t *testing.T) *kbsclient.AdminClient {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(r.dir, FileAdminToken))
	if err != nil {
		t.Fatal(err)
	}
	return &kbsclient.AdminClient{BaseURL: r.url, Token: strings.TrimSpace(string(tok))}
}

func newSealingKey(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileSealingKey)
	if _, err := kbs.LoadOrCreateFileSealer(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRunReplicasStartAtOncePostgres starts four KBS replicas at the same
// moment on one fresh PostgreSQL database (issue 8, finding 11): all must
// come up and the schema must be recorded once.
func TestRunReplicasStartAtOncePostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	key := newSealingKey(t)
	var rs []*kbsReplica
	for i := 0; i < 4; i++ {
		rs = append(rs, launchKBS(t, dsn, key))
	}
	for _, r := range rs {
		r.wait(t)
	}
	for _, r := range rs {
		if _, err := r.admin(t).List(context.Background()); err != nil {
			t.Fatalf("replica %s: %v", r.url, err)
		}
	}
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var versions []int
	rows, err := db.Query(context.Background(), `SELECT version FROM schema_migrations WHERE component = 'kbs' ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if want := fmt.Sprint(kbsVersions(t)); fmt.Sprint(versions) != want {
		t.Fatalf("schema_migrations for kbs = %v, want %s", versions, want)
	}
}

func makeRange(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// kbsVersions lists the KBS schema versions, found by migrating a scratch
// SQLite database (the step list is unexported in package kbs).
func kbsVersions(t *testing.T) []int {
	t.Helper()
	db := storetest.SQLite(t)
	if _, err := kbs.OpenStorage(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM schema_migrations WHERE component = 'kbs'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return makeRange(n)
}

// TestReplicasSecretRevocationPostgres revokes a secret through replica
// A's admin API; replica B, on the same PostgreSQL database, must refuse to
// release it. The KBS keeps no cache (every release reads the secret's row),
// so B refuses on the first request after the revocation returned; the
// test still polls with a deadline so that a cache added later is caught
// only if it outlives a few seconds.
func TestReplicasSecretRevocationPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	key := newSealingKey(t)
	a, b := launchKBS(t, dsn, key), launchKBS(t, dsn, key)
	a.wait(t)
	b.wait(t)
	att, err := sim.NewAttester(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.admin(t).Put(ctx, "db-password", []byte("correct horse battery"), "allow: [sim]\n"); err != nil {
		t.Fatal(err)
	}
	fetchB := &kbsclient.Client{BaseURL: b.url, Attester: att}
	if v, err := fetchB.Fetch(ctx, "db-password"); err != nil || string(v) != "correct horse battery" {
		t.Fatalf("release on B before revocation: %q %v", v, err)
	}
	start := time.Now()
	if _, err := a.admin(t).Revoke(ctx, "db-password"); err != nil {
		t.Fatal(err)
	}
	deadline := start.Add(5 * time.Second)
	for {
		_, err := fetchB.Fetch(ctx, "db-password")
		var kerr *kbsclient.Error
		if errors.As(err, &kerr) && kerr.Reason == kbsapi.ReasonRevoked {
			break
		}
		if err == nil && time.Now().After(deadline) {
			t.Fatal("replica B still releases a secret revoked on replica A")
		}
		if err != nil {
			t.Fatalf("release on B after revocation: %v, want a %q refusal", err, kbsapi.ReasonRevoked)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("replica B refused %s after revocation on A", time.Since(start))
}
