package kbs

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/internal/testvectors"
	"github.com/chatmcp/chatmcp/kbsapi"
	"github.com/chatmcp/chatmcp/store/storetest"
)

// discardAuditor accepts every entry without writing it. Benchmarks only:
// it isolates the verification and sealing cost from the audit fsync.
type discardAuditor struct{}

func (discardAuditor) Append(context.Context, audit.Entry) error { return nil }

// latencies records per-operation durations and reports p50, p99 and
// operations per second as benchmark metrics.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	var total time.Duration
	for _, d := range l {
		total += d
	}
	b.ReportMetric(float64(l[len(l)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(l[len(l)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(l))/total.Seconds(), "releases/s")
}

// BenchmarkHandshakeSim is the whole handshake over HTTP on loopback:
// challenge, simulated evidence, verification, audit (fsync), HPKE seal and
// open. SQLite store.
func BenchmarkHandshakeSim(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b, storetest.SQLite(b), nil)
	if _, err := e.admin.Put(ctx, "s", []byte("0123456789abcdef0123456789abcdef"), simPolicy(measA)); err != nil {
		b.Fatal(err)
	}
	c := e.client(measA)
	var lat latencies
	for b.Loop() {
		t0 := time.Now()
		if _, err := c.Fetch(ctx, "s"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	lat.report(b)
}

// BenchmarkReleasePath measures the server's decision after the nonce step:
// load the secret, verify evidence against the policy, unwrap and decrypt,
// audit, HPKE seal. "sim" binds the report data as the handshake does;
// "snp" uses the real SEV-SNP vector with its VCEK chain verified once and
// cached, and does NOT check report data, because a captured report cannot
// bind a fresh nonce. "audit" appends to a real log with fsync; "noaudit"
// discards entries to show the verification and sealing cost alone.
func BenchmarkReleasePath(b *testing.B) {
	snp := loadSNP(b)
	for _, tc := range []struct {
		name  string
		tee   attest.TEE
		audit bool
	}{
		{"sim/noaudit", attest.Sim, false},
		{"sim/audit", attest.Sim, true},
		{"snp/noaudit", attest.SEVSNP, false},
		{"snp/audit", attest.SEVSNP, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			e := newEnv(b, storetest.SQLite(b), nil)
			if !tc.audit {
				e.srv.opts.Audit = discardAuditor{}
			}
			pub := newHPKEPub(b)
			nonce := randBytes(kbsapi.NonceSize)
			var req *kbsapi.AttestRequest
			var rd []byte
			switch tc.tee {
			case attest.Sim:
				e.admin.Put(ctx, "s", []byte("0123456789abcdef0123456789abcdef"), simPolicy(measA))
				req = &kbsapi.AttestRequest{Secret: "s", Nonce: nonce, PublicKey: pub, Evidence: e.evidence(measA, nonce, pub)}
				r, _ := kbsapi.ExpectedReportData(nonce, pub)
				rd = r[:]
			case attest.SEVSNP:
				if snp == nil {
					b.Skip("SEV-SNP test vector not found beside the repository (../shared/testvectors)")
				}
				e.admin.Put(ctx, "s", []byte("0123456789abcdef0123456789abcdef"), "allow: [sevsnp]\nsevsnp:\n  measurement: ["+snpMeasurement+"]\n")
				req = &kbsapi.AttestRequest{Secret: "s", Nonce: nonce, PublicKey: pub, Evidence: snp}
			}
			deny := func(rf *edge.Error) error { return rf }
			var lat latencies
			for b.Loop() {
				t0 := time.Now()
				entry := audit.Entry{Type: "kbs.release"}
				if _, err := e.srv.release(ctx, req, rd, &entry, deny, t0); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			lat.report(b)
		})
	}
}

const snpMeasurement = "7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d"

// loadSNP reads the real SEV-SNP vector in place, or returns nil.
func loadSNP(b *testing.B) *attest.Evidence {
	root := testvectors.Root()
	if root == "" {
		return nil
	}
	vec := filepath.Join(root, "sevsnp")
	rep, err := os.ReadFile(filepath.Join(vec, "sev_snp_report.bin"))
	if err != nil {
		return nil
	}
	var certs [][]byte
	for _, f := range []string{"sev_snp_vcek.pem", "sev_snp_ask.pem"} {
		p, err := os.ReadFile(filepath.Join(vec, f))
		if err != nil {
			return nil
		}
		blk, _ := pem.Decode(p)
		if blk == nil {
			b.Fatalf("%s: no PEM block", f)
		}
		certs = append(certs, blk.Bytes)
	}
	return &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.SEVSNP, Report: rep, Certs: certs}
}

// BenchmarkFloor is the cost floor of one release: the primitives the
// handshake cannot avoid, measured in the same run. HPKE seal of a 32-byte
// value, the evidence signature check (Ed25519 for sim, ECDSA P-384 over a
// SHA-384 digest for SEV-SNP), and two AES-256-GCM opens (data key unwrap
// and value decrypt).
func BenchmarkFloor(b *testing.B) {
	ctx := context.Background()
	sl, _ := NewFileSealer(randBytes(32))
	wk, ct, _ := encryptValue(ctx, sl, "s", 1, []byte("0123456789abcdef0123456789abcdef"))
	pk, _ := kbsapi.HPKEKEM().NewPublicKey(newHPKEPub(b))
	info := kbsapi.ReleaseInfo("s", 1, randBytes(kbsapi.NonceSize))
	edPriv := ed25519.NewKeyFromSeed(randBytes(32))
	msg := randBytes(600)
	edSig := ed25519.Sign(edPriv, msg)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	digest := sha512.Sum384(randBytes(1184))
	ecSig, _ := ecdsa.SignASN1(rand.Reader, ecPriv, digest[:])
	common := func(b *testing.B) {
		v, err := decryptValue(ctx, sl, "s", 1, wk, ct)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := hpkeSeal(pk, info, v); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("sim", func(b *testing.B) {
		var lat latencies
		for b.Loop() {
			t0 := time.Now()
			if !ed25519.Verify(edPriv.Public().(ed25519.PublicKey), msg, edSig) {
				b.Fatal("verify")
			}
			common(b)
			lat = append(lat, time.Since(t0))
		}
		lat.report(b)
	})
	b.Run("snp", func(b *testing.B) {
		var lat latencies
		for b.Loop() {
			t0 := time.Now()
			if !ecdsa.VerifyASN1(&ecPriv.PublicKey, digest[:], ecSig) {
				b.Fatal("verify")
			}
			common(b)
			lat = append(lat, time.Since(t0))
		}
		lat.report(b)
	})
}
