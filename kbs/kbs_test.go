package kbs

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/kbsapi"
	"github.com/chatmcp/chatmcp/kbsclient"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
)

var (
	measA = bytes.Repeat([]byte{0xaa}, sim.MeasurementSize)
	measB = bytes.Repeat([]byte{0xbb}, sim.MeasurementSize)
)

func simPolicy(m []byte) string {
	return "allow: [sim]\nsim:\n  measurement: [" + hex.EncodeToString(m) + "]\n"
}

const testToken = "0123456789abcdef0123456789abcdef-test-token"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one KBS under test: server, its audit log path, admin client.
type env struct {
	t      testing.TB
	db     *store.DB
	srv    *Server
	http   *httptest.Server
	admin  *kbsclient.AdminClient
	log    *audit.Log
	logDir string
	clock  *clock
	sealer Sealer
}

type envOpts struct {
	dev    bool
	sealer Sealer
}

func newEnv(t testing.TB, db *store.DB, o *envOpts) *env {
	t.Helper()
	if o == nil {
		o = &envOpts{dev: true}
	}
	ctx := context.Background()
	st, err := OpenStorage(ctx, db)
	if err != nil {
		t.Fatalf("OpenStorage: %v", err)
	}
	sl := o.sealer
	if sl == nil {
		key := make([]byte, 32)
		rand.Read(key)
		sl, _ = NewFileSealer(key)
	}
	if err := st.CheckSealer(ctx, sl); err != nil {
		t.Fatalf("CheckSealer: %v", err)
	}
	dir := t.TempDir()
	alog, err := audit.Open(ctx, filepath.Join(dir, "audit.jsonl"), &audit.Options{Signer: auditKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	clk := &clock{t: time.Now()}
	srv, err := NewServer(&Options{Storage: st, Sealer: sl, Checker: verifiers.New(nil), Audit: alog,
		AdminToken: testToken, Dev: o.dev, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{t: t, db: db, srv: srv, http: hs, admin: &kbsclient.AdminClient{BaseURL: hs.URL, Token: testToken},
		log: alog, logDir: dir, clock: clk, sealer: sl}
}

func auditKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(randBytes(ed25519.SeedSize))
}

func randBytes(n int) []byte { b := make([]byte, n); rand.Read(b); return b }

func simAttester(t testing.TB, m []byte, now func() time.Time) *sim.Attester {
	a, err := sim.NewAttester(&sim.Options{Measurement: m, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *env) client(m []byte) *kbsclient.Client {
	return &kbsclient.Client{BaseURL: e.http.URL, Attester: simAttester(e.t, m, e.clock.Now)}
}

func (e *env) auditLines() []map[string]any {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.logDir, "audit.jsonl"))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := audit.Verify(bytes.NewReader(b), nil); err != nil {
		e.t.Fatalf("audit log does not verify: %v", err)
	}
	var out []map[string]any
	for _, ln := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		json.Unmarshal(ln, &m)
		if m["type"] == "kbs.release" || m["type"] == "kbs.admin" {
			out = append(out, m)
		}
	}
	return out
}

func (e *env) lastAudit() map[string]any {
	l := e.auditLines()
	if len(l) == 0 {
		e.t.Fatal("no audit entries")
	}
	return l[len(l)-1]
}

func refusalReason(t testing.TB, err error) string {
	t.Helper()
	var ke *kbsclient.Error
	if !errors.As(err, &ke) {
		t.Fatalf("error %v is not a *kbs.Error", err)
	}
	return ke.Reason
}

func TestHandshakeRotateRevoke(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, nil)
		if _, err := e.admin.Put(ctx, "db-url", []byte("postgres://v1"), simPolicy(measA)); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, v, err := e.client(measA).FetchVersion(ctx, "db-url")
		if err != nil || string(got) != "postgres://v1" || v != 1 {
			t.Fatalf("Fetch = %q v%d, %v", got, v, err)
		}
		a := e.lastAudit()
		if a["decision"] != "granted" || a["secret"] != "db-url" || a["tee"] != "sim" || a["measurement"] != hex.EncodeToString(measA) || a["version"] != 1.0 {
			t.Fatalf("audit entry %v", a)
		}
		if _, err := e.admin.Put(ctx, "db-url", []byte("postgres://v2"), simPolicy(measA)); err != nil {
			t.Fatal(err)
		}
		got, v, err = e.client(measA).FetchVersion(ctx, "db-url")
		if err != nil || string(got) != "postgres://v2" || v != 2 {
			t.Fatalf("Fetch after rotate = %q v%d, %v", got, v, err)
		}
		list, err := e.admin.List(ctx)
		if err != nil || len(list) != 1 || list[0].Version != 2 || len(list[0].Versions) != 2 || list[0].Revoked {
			t.Fatalf("List = %+v, %v", list, err)
		}
		if _, err := e.admin.Revoke(ctx, "db-url"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client(measA).Fetch(ctx, "db-url"); refusalReason(t, err) != kbsapi.ReasonRevoked {
			t.Fatalf("Fetch of revoked: %v", err)
		}
		if a := e.lastAudit(); a["decision"] != "denied" || !strings.HasPrefix(a["reason"].(string), "revoked") {
			t.Fatalf("audit of revoked fetch: %v", a)
		}
		if _, err := e.admin.Put(ctx, "db-url", []byte("postgres://v3"), simPolicy(measA)); err != nil {
			t.Fatal(err)
		}
		if got, err := e.client(measA).Fetch(ctx, "db-url"); err != nil || string(got) != "postgres://v3" {
			t.Fatalf("Fetch after re-put = %q, %v", got, err)
		}
		// A policy change applies to the next release at once.
		if _, err := e.admin.SetPolicy(ctx, "db-url", simPolicy(measB)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client(measA).Fetch(ctx, "db-url"); refusalReason(t, err) != string(attest.CheckMeasurement) {
			t.Fatalf("Fetch under new policy: %v", err)
		}
		if got, err := e.client(measB).Fetch(ctx, "db-url"); err != nil || string(got) != "postgres://v3" {
			t.Fatalf("Fetch with new measurement = %q, %v", got, err)
		}
		for _, l := range e.auditLines() {
			b, _ := json.Marshal(l)
			if bytes.Contains(b, []byte("postgres://")) {
				t.Fatalf("audit entry carries a secret value: %s", b)
			}
		}
	})
}

// handshake pieces, for tests that break one step.
func (e *env) challenge(secret string, tee attest.TEE) *kbsapi.Challenge {
	e.t.Helper()
	var ch kbsapi.Challenge
	if err := postJSON(e.http.URL+kbsapi.PathRequest, kbsapi.ChallengeRequest{Secret: secret, TEE: tee}, &ch); err != nil {
		e.t.Fatalf("challenge: %v", err)
	}
	return &ch
}

func newHPKEPub(t testing.TB) []byte {
	sk, err := kbsapi.HPKEKEM().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return sk.PublicKey().Bytes()
}

func (e *env) evidence(m, nonce, pub []byte) *attest.Evidence {
	e.t.Helper()
	rd, err := kbsapi.ExpectedReportData(nonce, pub)
	if err != nil {
		e.t.Fatal(err)
	}
	ev, err := simAttester(e.t, m, e.clock.Now).Attest(context.Background(), rd)
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

func (e *env) attestRaw(req kbsapi.AttestRequest) error {
	var rel kbsapi.Release
	return postJSON(e.http.URL+kbsapi.PathAttest, req, &rel)
}

func TestReleaseRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, storetest.SQLite(t), nil)
	if _, err := e.admin.Put(ctx, "s1", []byte("value-1"), simPolicy(measA)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Put(ctx, "s2", []byte("value-2"), simPolicy(measA)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Put(ctx, "gone", []byte("value-3"), simPolicy(measA)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Revoke(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	// A completed handshake whose nonce and evidence are replayed below.
	ch0 := e.challenge("s1", attest.Sim)
	pub0 := newHPKEPub(t)
	ev0 := e.evidence(measA, ch0.Nonce, pub0)
	if err := e.attestRaw(kbsapi.AttestRequest{Secret: "s1", Nonce: ch0.Nonce, Evidence: ev0, PublicKey: pub0}); err != nil {
		t.Fatalf("baseline handshake: %v", err)
	}
	tests := []struct {
		name   string
		req    func() kbsapi.AttestRequest
		reason string
	}{
		{"replayed nonce", func() kbsapi.AttestRequest {
			return kbsapi.AttestRequest{Secret: "s1", Nonce: ch0.Nonce, Evidence: ev0, PublicKey: pub0}
		}, kbsapi.ReasonNonce},
		{"reused evidence with a fresh nonce", func() kbsapi.AttestRequest {
			ch := e.challenge("s1", attest.Sim)
			return kbsapi.AttestRequest{Secret: "s1", Nonce: ch.Nonce, Evidence: ev0, PublicKey: pub0}
		}, string(attest.CheckReportData)},
		{"evidence bound to another key", func() kbsapi.AttestRequest {
			ch := e.challenge("s1", attest.Sim)
			return kbsapi.AttestRequest{Secret: "s1", Nonce: ch.Nonce, Evidence: e.evidence(measA, ch.Nonce, newHPKEPub(t)), PublicKey: newHPKEPub(t)}
		}, string(attest.CheckReportData)},
		{"nonce for another secret", func() kbsapi.AttestRequest {
			ch := e.challenge("s2", attest.Sim)
			pub := newHPKEPub(t)
			return kbsapi.AttestRequest{Secret: "s1", Nonce: ch.Nonce, Evidence: e.evidence(measA, ch.Nonce, pub), PublicKey: pub}
		}, kbsapi.ReasonWrongSecret},
		{"nonce for another TEE", func() kbsapi.AttestRequest {
			ch := e.challenge("s1", attest.SEVSNP)
			pub := newHPKEPub(t)
			return kbsapi.AttestRequest{Secret: "s1", Nonce: ch.Nonce, Evidence: e.evidence(measA, ch.Nonce, pub), PublicKey: pub}
		}, kbsapi.ReasonWrongTEE},
		{"expired nonce", func() kbsapi.AttestRequest {
			ch := e.challenge("s1", attest.Sim)
			pub := newHPKEPub(t)
			ev := e.evidence(measA, ch.Nonce, pub)
			e.clock.Add(DefaultNonceTTL + time.Second)
			return kbsapi.AttestRequest{Secret: "s1", Nonce: ch.Nonce, Evidence: ev, PublicKey: pub}
		}, kbsapi.ReasonExpired},
		{"policy failure", func() kbsapi.AttestRequest {
			ch := e.challenge("s1", attest.Sim)
			pub := newHPKEPub(t)
			return kbsapi.AttestRequest{Secret: "s1", Nonce: ch.Nonce, Evidence: e.evidence(measB, ch.Nonce, pub), PublicKey: pub}
		}, string(attest.CheckMeasurement)},
		{"tampered evidence", func() kbsapi.AttestRequest {
			ch := e.challenge("s1", attest.Sim)
			pub := newHPKEPub(t)
			ev := e.evidence(measA, ch.Nonce, pub)
			var rep struct{ Statement, Signature []byte }
			if err := json.Unmarshal(ev.Report, &rep); err != nil {
				t.Fatal(err)
			}
			rep.Signature[0] ^= 1
			ev.Report, _ = json.Marshal(map[string][]byte{"statement": rep.Statement, "signature": rep.Signature})
			return kbsapi.AttestRequest{Secret: "s1", Nonce: ch.Nonce, Evidence: ev, PublicKey: pub}
		}, string(attest.CheckSignature)},
		{"revoked secret", func() kbsapi.AttestRequest {
			ch := e.challenge("gone", attest.Sim)
			pub := newHPKEPub(t)
			return kbsapi.AttestRequest{Secret: "gone", Nonce: ch.Nonce, Evidence: e.evidence(measA, ch.Nonce, pub), PublicKey: pub}
		}, kbsapi.ReasonRevoked},
		{"unknown secret", func() kbsapi.AttestRequest {
			ch := e.challenge("nope", attest.Sim)
			pub := newHPKEPub(t)
			return kbsapi.AttestRequest{Secret: "nope", Nonce: ch.Nonce, Evidence: e.evidence(measA, ch.Nonce, pub), PublicKey: pub}
		}, kbsapi.ReasonNotFound},
		{"never issued nonce", func() kbsapi.AttestRequest {
			n := randBytes(kbsapi.NonceSize)
			pub := newHPKEPub(t)
			return kbsapi.AttestRequest{Secret: "s1", Nonce: n, Evidence: e.evidence(measA, n, pub), PublicKey: pub}
		}, kbsapi.ReasonNonce},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.auditLines())
			err := e.attestRaw(tc.req())
			if err == nil {
				t.Fatal("released")
			}
			reason := refusalReason(t, err)
			if tc.reason != "" && reason != tc.reason {
				t.Fatalf("reason %q, want %q (%v)", reason, tc.reason, err)
			}
			lines := e.auditLines()
			if len(lines) != before+1 || lines[len(lines)-1]["decision"] != "denied" {
				t.Fatalf("refusal not audited: %v", lines[len(lines)-1])
			}
		})
	}
}

func TestSimRefusedWithoutDev(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, storetest.SQLite(t), &envOpts{dev: false})
	if _, err := e.admin.Put(ctx, "s", []byte("v"), simPolicy(measA)); err != nil {
		t.Fatal(err)
	}
	_, err := e.client(measA).Fetch(ctx, "s")
	if refusalReason(t, err) != kbsapi.ReasonSimRefused {
		t.Fatalf("Fetch with sim on a non-dev KBS: %v", err)
	}
	// Even with a nonce issued under another TEE, sim evidence at the
	// attest step is refused.
	ch := e.challenge("s", attest.SEVSNP)
	pub := newHPKEPub(t)
	ev := e.evidence(measA, ch.Nonce, pub)
	err = e.attestRaw(kbsapi.AttestRequest{Secret: "s", Nonce: ch.Nonce, Evidence: ev, PublicKey: pub})
	if r := refusalReason(t, err); r != kbsapi.ReasonWrongTEE && r != kbsapi.ReasonSimRefused {
		t.Fatalf("attest with sim evidence: %v", err)
	}
	srv := e.srv
	srv.opts.Dev = false
	// Forge a nonce record for sim directly in storage to reach the attest
	// step's own sim check.
	n := randBytes(kbsapi.NonceSize)
	if err := srv.opts.Storage.issueNonce(ctx, n, "s", "sim", e.clock.Now(), e.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ev = e.evidence(measA, n, pub)
	err = e.attestRaw(kbsapi.AttestRequest{Secret: "s", Nonce: n, Evidence: ev, PublicKey: pub})
	if refusalReason(t, err) != kbsapi.ReasonSimRefused {
		t.Fatalf("attest step sim check: %v", err)
	}
}

func TestAuditFailureReleasesNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, storetest.SQLite(t), nil)
	if _, err := e.admin.Put(ctx, "s", []byte("value"), simPolicy(measA)); err != nil {
		t.Fatal(err)
	}
	e.log.Close() // the audit log can no longer be written
	_, err := e.client(measA).Fetch(ctx, "s")
	var ke *kbsclient.Error
	if !errors.As(err, &ke) || ke.Status != http.StatusServiceUnavailable || ke.Reason != kbsapi.ReasonAudit {
		t.Fatalf("Fetch with a dead audit log = %v, want 503 %q", err, kbsapi.ReasonAudit)
	}
	_, err = e.admin.Put(ctx, "s", []byte("value2"), simPolicy(measA))
	if !errors.As(err, &ke) || ke.Reason != kbsapi.ReasonAudit {
		t.Fatalf("Put with a dead audit log = %v", err)
	}
	if _, err = e.admin.Revoke(ctx, "s"); !errors.As(err, &ke) || ke.Reason != kbsapi.ReasonAudit {
		t.Fatalf("Revoke with a dead audit log = %v", err)
	}
	list, _ := e.admin.List(ctx)
	if len(list) != 1 || list[0].Version != 1 || list[0].Revoked {
		t.Fatalf("state changed without an audit entry: %+v", list)
	}
}

func TestAtRestNoPlaintext(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, nil)
		value := []byte("SECRET-" + hex.EncodeToString(randBytes(16)))
		for i := 0; i < 2; i++ {
			if _, err := e.admin.Put(ctx, "needle", value, simPolicy(measA)); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := e.client(measA).Fetch(ctx, "needle"); err != nil || !bytes.Equal(got, value) {
			t.Fatalf("Fetch: %q %v", got, err)
		}
		e.log.Close()
		var haystack [][]byte
		dirs := []string{e.logDir}
		if db.Dialect == store.SQLite {
			db.Exec(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
			dirs = append(dirs, filepath.Dir(db.DSN))
		} else {
			for _, tbl := range []string{"kbs_secrets", "kbs_versions", "kbs_nonces", "kbs_meta"} {
				rows, err := db.Query(ctx, `SELECT row_to_json(t)::text FROM `+tbl+` t`)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var s string
					rows.Scan(&s)
					haystack = append(haystack, []byte(s))
				}
				rows.Close()
			}
			if len(haystack) < 4 {
				t.Fatalf("PostgreSQL dump has only %d rows", len(haystack))
			}
		}
		for _, d := range dirs {
			filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					b, _ := os.ReadFile(p)
					haystack = append(haystack, b)
				}
				return nil
			})
		}
		hexv := []byte(hex.EncodeToString(value))
		for _, h := range haystack {
			if bytes.Contains(h, value) || bytes.Contains(h, hexv) {
				t.Fatal("secret value found at rest")
			}
		}
		if len(haystack) == 0 {
			t.Fatal("searched nothing")
		}
	})
}

func TestWrongSealerRefused(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	newEnv(t, db, nil)
	st, _ := OpenStorage(ctx, db)
	other, _ := NewFileSealer(randBytes(32))
	if err := st.CheckSealer(ctx, other); err == nil || !strings.Contains(err.Error(), "sealing key") {
		t.Fatalf("CheckSealer with another key = %v", err)
	}
}

// TestReplicas runs two KBS servers on one PostgreSQL database.
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	open := func() *store.DB {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	sl, _ := NewFileSealer(randBytes(32))
	a := newEnv(t, open(), &envOpts{dev: true, sealer: sl})
	b := newEnv(t, open(), &envOpts{dev: true, sealer: sl})
	if _, err := a.admin.Put(ctx, "shared", []byte("from-a"), simPolicy(measA)); err != nil {
		t.Fatal(err)
	}
	if got, err := b.client(measA).Fetch(ctx, "shared"); err != nil || string(got) != "from-a" {
		t.Fatalf("fetch via replica b = %q, %v", got, err)
	}
	ch := a.challenge("shared", attest.Sim)
	pub := newHPKEPub(t)
	ev := a.evidence(measA, ch.Nonce, pub)
	req := kbsapi.AttestRequest{Secret: "shared", Nonce: ch.Nonce, Evidence: ev, PublicKey: pub}
	if err := b.attestRaw(req); err != nil {
		t.Fatalf("nonce from a at b: %v", err)
	}
	if err := a.attestRaw(req); refusalReason(t, err) != kbsapi.ReasonNonce {
		t.Fatalf("same nonce again at a: %v", err)
	}
	// Concurrent redemption of one nonce on both replicas: exactly one wins.
	ch = a.challenge("shared", attest.Sim)
	ev = a.evidence(measA, ch.Nonce, pub)
	req = kbsapi.AttestRequest{Secret: "shared", Nonce: ch.Nonce, Evidence: ev, PublicKey: pub}
	errs := make(chan error, 2)
	go func() { errs <- a.attestRaw(req) }()
	go func() { errs <- b.attestRaw(req) }()
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) {
		t.Fatalf("concurrent redemption: %v / %v, want exactly one success", e1, e2)
	}
}

// postJSON posts in to url and decodes the response into out; a refusal is
// a *kbsclient.Error, as the client would report it (internal/edge).
func postJSON(url string, in, out any) error {
	c := edge.Client{Service: "kbs", MaxResponse: kbsapi.MaxAdminBody}
	return c.Do(context.Background(), http.MethodPost, url, "", in, out)
}
