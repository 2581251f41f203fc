package ratls

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sim"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func simAttester(t testing.TB, now func() time.Time) *sim.Attester {
	t.Helper()
	a, err := sim.NewAttester(&sim.Options{Measurement: bytes.Repeat([]byte{0x11}, 48), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func policy(t testing.TB, y string) *attest.Policy {
	t.Helper()
	p, err := attest.ParsePolicy([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const allowSim = "allow: [sim]\n"

// serve runs an HTTPS server over loopback with cfg and returns its base URL.
func serve(t testing.TB, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func get(v *Verifier, url string) (string, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: ClientConfig(v)}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// forgedCert makes a self-signed certificate for a fresh key carrying
// evidence ev, with the given validity.
func forgedCert(t testing.TB, ev *attest.Evidence, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var exts []pkix.Extension
	if ev != nil {
		env, _ := json.Marshal(ev)
		ext, _ := marshalExtension(env)
		exts = append(exts, pkix.Extension{Id: oidEvidence, Value: ext})
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: notBefore, NotAfter: notAfter, ExtraExtensions: exts}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func checkOf(err error) attest.Check {
	c, _ := attest.CheckOf(err)
	return c
}

func TestHandshake(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	a := simAttester(t, time.Now)
	checker := attest.NewChecker(sim.NewVerifier())

	goodIssuer := NewIssuer(a, nil)
	good := serve(t, goodIssuer.ServerConfig(), nil)

	// Evidence for one key, presented in a certificate for another.
	other := forgedCert(t, nil, now.Add(-time.Hour), now.Add(time.Hour))
	otherLeaf, _ := x509.ParseCertificate(other.Certificate[0])
	rdOther, _ := ReportData(otherLeaf.RawSubjectPublicKeyInfo)
	evOther, err := a.Attest(ctx, rdOther)
	if err != nil {
		t.Fatal(err)
	}
	swapped := serve(t, &tls.Config{Certificates: []tls.Certificate{forgedCert(t, evOther, now.Add(-time.Hour), now.Add(time.Hour))}}, nil)
	noExt := serve(t, &tls.Config{Certificates: []tls.Certificate{other}}, nil)

	// A certificate issued two days ago has expired.
	old := NewIssuer(simAttester(t, func() time.Time { return now.Add(-48 * time.Hour) }),
		&IssuerOptions{Now: func() time.Time { return now.Add(-48 * time.Hour) }})
	expired := serve(t, old.ServerConfig(), nil)

	tests := []struct {
		name   string
		url    string
		policy string
		check  attest.Check
	}{
		{"success", good, allowSim, ""},
		{"policy rejects sim", good, "allow: [sevsnp, tdx]\n", attest.CheckNotAllowed},
		{"measurement not in list", good, allowSim + "sim:\n  measurement: [" + strings.Repeat("22", 48) + "]\n", attest.CheckMeasurement},
		{"evidence bound to another key", swapped, allowSim, attest.CheckReportData},
		{"no evidence extension", noExt, allowSim, attest.CheckMalformed},
		{"expired certificate", expired, allowSim, attest.CheckExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(checker, policy(t, tt.policy), nil)
			body, err := get(v, tt.url)
			if tt.check == "" {
				if err != nil || body != "hello" {
					t.Fatalf("GET = %q, %v", body, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("GET succeeded, want %q rejection", tt.check)
			}
			// The client's own check error is the one the handshake returns.
			if !strings.Contains(err.Error(), string(tt.check)+": ") {
				t.Fatalf("GET error = %v, want check %q", err, tt.check)
			}
		})
	}
}

func TestVerifyCertificateErrors(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	checker := attest.NewChecker(sim.NewVerifier())
	v := NewVerifier(checker, policy(t, allowSim), &VerifierOptions{CacheSize: -1})
	a := simAttester(t, time.Now)
	c, err := NewIssuer(a, nil).Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Flip one byte of the signature: the self-signature check must fail.
	der := append([]byte(nil), c.Certificate[0]...)
	der[len(der)-3] ^= 0x01
	badSig, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyCertificate(ctx, badSig); checkOf(err) != attest.CheckSignature {
		t.Fatalf("bad self-signature: %v", err)
	}
	// Two evidence extensions: Go's parser refuses the DER, and
	// EvidenceFromCertificate refuses a certificate built some other way.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ext, _ := marshalExtension([]byte(`{}`))
	dup := []pkix.Extension{{Id: oidEvidence, Value: ext}, {Id: oidEvidence, Value: ext}}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtraExtensions: dup}
	dupDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyPeerCertificate([][]byte{dupDER}, nil); checkOf(err) != attest.CheckMalformed {
		t.Fatalf("two extensions (DER): %v", err)
	}
	if _, err := EvidenceFromCertificate(&x509.Certificate{Extensions: dup}); checkOf(err) != attest.CheckMalformed || !strings.Contains(err.Error(), "2 evidence extensions") {
		t.Fatalf("two extensions: %v", err)
	}
	if err := v.VerifyConnection(tls.ConnectionState{}); checkOf(err) != attest.CheckMalformed {
		t.Fatalf("no certificate: %v", err)
	}
	if err := v.VerifyPeerCertificate([][]byte{{1, 2, 3}}, nil); checkOf(err) != attest.CheckMalformed {
		t.Fatalf("garbage certificate: %v", err)
	}
	if err := v.VerifyPeerCertificate(c.Certificate, nil); err != nil {
		t.Fatalf("VerifyPeerCertificate: %v", err)
	}
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	clk := newClock(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	i := NewIssuer(simAttester(t, clk.Now), &IssuerOptions{Now: clk.Now})
	spki := func() string {
		c, err := i.Certificate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(c.Leaf.RawSubjectPublicKeyInfo)
	}
	first := spki()
	clk.Add(15 * time.Hour)
	if spki() != first {
		t.Fatal("key rotated before two thirds of its lifetime")
	}
	clk.Add(2 * time.Hour) // 17h > 16h
	second := spki()
	if second == first {
		t.Fatal("key not rotated after two thirds of its lifetime")
	}
	c, _ := i.Certificate(ctx)
	if !c.Leaf.NotAfter.Equal(clk.Now().Add(24 * time.Hour)) {
		t.Fatalf("NotAfter = %s", c.Leaf.NotAfter)
	}
	// The rotated certificate verifies at the new time.
	v := NewVerifier(attest.NewChecker(sim.NewVerifier()), policy(t, allowSim), &VerifierOptions{Now: clk.Now})
	if _, err := v.VerifyCertificate(ctx, c.Leaf); err != nil {
		t.Fatalf("rotated certificate: %v", err)
	}
	got, err := i.SPKI(ctx)
	if err != nil || string(got) != second {
		t.Fatalf("SPKI does not match the current certificate: %v", err)
	}
}

// failingAttester fails after its first n attestations.
type failingAttester struct {
	attest.Attester
	n int
}

func (f *failingAttester) Attest(ctx context.Context, rd [64]byte) (*attest.Evidence, error) {
	if f.n == 0 {
		return nil, errors.New("device gone")
	}
	f.n--
	return f.Attester.Attest(ctx, rd)
}

func TestRotationFailure(t *testing.T) {
	ctx := context.Background()
	clk := newClock(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	i := NewIssuer(&failingAttester{Attester: simAttester(t, clk.Now), n: 1}, &IssuerOptions{Now: clk.Now})
	first, err := i.Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(20 * time.Hour)
	c, err := i.Certificate(ctx)
	if err != nil || c != first {
		t.Fatalf("renewal failure while valid: got %v, %v; want the current certificate", c, err)
	}
	clk.Add(5 * time.Hour)
	if _, err := i.Certificate(ctx); err == nil {
		t.Fatal("expired certificate served after failed renewal")
	}
}

func TestCache(t *testing.T) {
	clk := newClock(time.Now())
	a := simAttester(t, clk.Now)
	url := serve(t, NewIssuer(a, &IssuerOptions{Now: clk.Now}).ServerConfig(), nil)
	checker := attest.NewChecker(sim.NewVerifier())
	v := NewVerifier(checker, policy(t, allowSim+"max_age: 1h\n"), &VerifierOptions{Now: clk.Now, CacheSize: 2})
	for n := range 3 {
		if _, err := get(v, url); err != nil {
			t.Fatalf("connection %d: %v", n, err)
		}
	}
	if s := v.CacheStats(); s.Hits != 2 || s.Misses != 1 || s.Len != 1 {
		t.Fatalf("cache stats = %+v, want 2 hits, 1 miss, 1 entry", s)
	}
	// Past max_age the cached verdict is dropped and the evidence rejected.
	clk.Add(61 * time.Minute)
	if _, err := get(v, url); err == nil || !strings.Contains(err.Error(), "expired: ") {
		t.Fatalf("after max_age: %v, want expired", err)
	}
	if s := v.CacheStats(); s.Misses != 2 || s.Len != 0 {
		t.Fatalf("cache stats after expiry = %+v", s)
	}
	// Disabled cache: every handshake verifies.
	nc := NewVerifier(checker, policy(t, allowSim), &VerifierOptions{CacheSize: -1})
	clk.Add(-61 * time.Minute)
	for range 2 {
		if _, err := get(nc, url); err != nil {
			t.Fatal(err)
		}
	}
	if s := nc.CacheStats(); s != (CacheStats{}) {
		t.Fatalf("disabled cache stats = %+v", s)
	}
}

func TestCacheEviction(t *testing.T) {
	c := newCache(2)
	now := time.Now()
	k := func(b byte) cacheKey { return cacheKey{spki: [32]byte{b}} }
	for b := range byte(3) {
		c.put(k(b), &attest.Claims{}, now.Add(time.Hour))
	}
	if _, ok := c.get(k(0), now); ok {
		t.Fatal("least recently used entry not evicted")
	}
	for _, b := range []byte{1, 2} {
		if _, ok := c.get(k(b), now); !ok {
			t.Fatalf("entry %d evicted", b)
		}
	}
}

func TestFreshness(t *testing.T) {
	ctx := context.Background()
	a := simAttester(t, time.Now)
	i := NewIssuer(a, nil)
	mux := http.NewServeMux()
	mux.Handle(AttestationPath, AttestationHandler(a, i.SPKI))
	good := serve(t, i.ServerConfig(), mux)

	// A server answering with evidence bound to some other key.
	j := NewIssuer(a, nil)
	wrongMux := http.NewServeMux()
	wrongMux.Handle(AttestationPath, AttestationHandler(a, j.SPKI))
	wrong := serve(t, i.ServerConfig(), wrongMux)

	checker := attest.NewChecker(sim.NewVerifier())
	v := NewVerifier(checker, policy(t, allowSim+"max_age: 1m\n"), nil)
	claims, err := v.CheckFresh(ctx, nil, good)
	if err != nil {
		t.Fatalf("CheckFresh: %v", err)
	}
	if !claims.Insecure || time.Since(claims.Time) > time.Minute {
		t.Fatalf("claims = %+v", claims)
	}
	if _, err := v.CheckFresh(ctx, nil, wrong); checkOf(err) != attest.CheckReportData {
		t.Fatalf("CheckFresh with evidence for another key: %v", err)
	}

	c := &http.Client{Transport: &http.Transport{TLSClientConfig: ClientConfig(v)}}
	for _, q := range []string{"", "?nonce=zz", "?nonce=00", "?nonce=" + strings.Repeat("00", 65),
		"?nonce=" + strings.Repeat("00", 16) + "&nonce=" + strings.Repeat("00", 16)} {
		resp, err := c.Get(good + AttestationPath + q)
		if err != nil {
			t.Fatal(err)
		}
		if reason := reasonOf(t, resp); resp.StatusCode != http.StatusBadRequest || reason != ReasonBadNonce {
			t.Errorf("GET %q: %s %q, want 400 %q", q, resp.Status, reason, ReasonBadNonce)
		}
	}
	resp, err := c.Post(good+AttestationPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	if reason := reasonOf(t, resp); resp.StatusCode != http.StatusMethodNotAllowed || reason != ReasonMethod {
		t.Errorf("POST: %s %q, want 405 %q", resp.Status, reason, ReasonMethod)
	}
}

func TestParseExtension(t *testing.T) {
	a := simAttester(t, time.Now)
	ev, _ := a.Attest(context.Background(), [64]byte{})
	env, _ := json.Marshal(ev)
	good, _ := marshalExtension(env)
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"good", good, true},
		{"trailing bytes", append(append([]byte(nil), good...), 0), false},
		{"not an octet string", []byte{0x02, 0x01, 0x01}, false},
		{"empty", nil, false},
		{"not json", []byte{0x04, 0x01, 'x'}, false},
		{"too large", make([]byte, MaxExtensionSize+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseExtension(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseExtension err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && checkOf(err) != attest.CheckMalformed {
				t.Fatalf("error %v is not malformed", err)
			}
		})
	}
}

func FuzzParseExtension(f *testing.F) {
	a := simAttester(f, time.Now)
	ev, _ := a.Attest(context.Background(), [64]byte{})
	env, _ := json.Marshal(ev)
	good, _ := marshalExtension(env)
	f.Add(good)
	f.Add([]byte{0x04, 0x00})
	f.Add([]byte{0x04, 0x81, 0x02, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseExtension(b)
		if err != nil {
			if checkOf(err) != attest.CheckMalformed {
				t.Fatalf("error without malformed check: %v", err)
			}
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("ParseExtension returned invalid evidence: %v", err)
		}
	})
}

func benchHandshake(b *testing.B, cacheSize int) {
	a := simAttester(b, time.Now)
	cfg := NewIssuer(a, nil).ServerConfig()
	// Resumption would skip certificate exchange; disable it so every
	// iteration sees the full certificate.
	cfg.SessionTicketsDisabled = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, cfg)
				tc.Handshake()
				tc.Close()
			}()
		}
	}()
	v := NewVerifier(attest.NewChecker(sim.NewVerifier()), policy(b, allowSim), &VerifierOptions{CacheSize: cacheSize})
	ccfg := ClientConfig(v)
	for b.Loop() {
		c, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func BenchmarkHandshakeCached(b *testing.B)   { benchHandshake(b, 0) }
func BenchmarkHandshakeUncached(b *testing.B) { benchHandshake(b, -1) }

func benchVerifyCertificate(b *testing.B, cacheSize int) {
	ctx := context.Background()
	c, err := NewIssuer(simAttester(b, time.Now), nil).Certificate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(attest.NewChecker(sim.NewVerifier()), policy(b, allowSim), &VerifierOptions{CacheSize: cacheSize})
	for b.Loop() {
		if _, err := v.VerifyCertificate(ctx, c.Leaf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCertificateCached(b *testing.B)   { benchVerifyCertificate(b, 0) }
func BenchmarkVerifyCertificateUncached(b *testing.B) { benchVerifyCertificate(b, -1) }

// reasonOf reads and closes resp's body and returns its JSON reason code.
func reasonOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var eb struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
		t.Fatalf("%s: error body is not JSON: %v", resp.Request.URL, err)
	}
	if eb.Error == "" {
		t.Errorf("%s: error body without a message", resp.Request.URL)
	}
	return eb.Reason
}

// A failing key or attester is a 500 with a reason code; the cause stays
// in the log.
func TestAttestationHandlerUnavailable(t *testing.T) {
	a := simAttester(t, time.Now)
	h := AttestationHandler(a, func(context.Context) ([]byte, error) {
		return nil, errors.New("secret internal detail")
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, AttestationPath+"?nonce="+strings.Repeat("ab", 32), nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	if body := rec.Body.String(); !strings.Contains(body, `"reason":"`+ReasonUnavailable+`"`) || strings.Contains(body, "secret internal detail") {
		t.Fatalf("body %s: want reason %q and no internal cause", body, ReasonUnavailable)
	}
}
