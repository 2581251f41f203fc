package tdx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	tdxtest "github.com/google/go-tdx-guest/testing"
	"github.com/google/go-tdx-guest/testing/testdata"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/internal/testvectors"
)

// The real vector's MRTD (testvectors/README.md).
const vectorMRTD = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"

// vectorTime is a time at which the real quote's PCK chain is valid.
var vectorTime = time.Date(2026, time.July, 1, 0, 0, 0, 0, time.UTC)

// sampleTime is when go-tdx-guest's sample collateral is current.
var sampleTime = time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)

// Offsets of fields in a version 4 quote (header 48 bytes, then the body).
const (
	offTDAttributes = headerSize + 16 + 48 + 48 + 8
	offMRTD         = headerSize + 136
	offReportData   = headerSize + 520
	offSignature    = signedDataOff
)

func realQuote(t testing.TB) []byte {
	t.Helper()
	return testvectors.Read(t, "tdx", "tdx_quote.bin")
}

func evidence(b []byte) *attest.Evidence {
	return &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.TDX, Report: b}
}

// sampleQuote is go-tdx-guest's sample quote without its trailing
// (non-zero, test-only) extra bytes, which ParseQuote rejects.
func sampleQuote(t testing.TB) []byte {
	t.Helper()
	b := testdata.RawQuote
	end := signedDataOff + int(binary.LittleEndian.Uint32(b[signedSizeOff:signedDataOff]))
	return bytes.Clone(b[:end])
}

func wantCheck(t *testing.T, err error, want attest.Check) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %q", want)
	}
	got, ok := attest.CheckOf(err)
	if !ok {
		t.Fatalf("error %v is not an *attest.Error, want check %q", err, want)
	}
	if got != want {
		t.Fatalf("check %q (%v), want %q", got, err, want)
	}
}

func TestVerifyRealVector(t *testing.T) {
	c, err := NewVerifier(nil).Verify(context.Background(), evidence(realQuote(t)), &attest.VerifyOptions{Now: vectorTime})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := hex.EncodeToString(c.Measurement); got != vectorMRTD {
		t.Errorf("MRTD %s, want %s", got, vectorMRTD)
	}
	if c.Debug {
		t.Error("debug set, TD_ATTRIBUTES 0000001000000000 has it clear")
	}
	if c.Platform["td_attributes"] != "0000001000000000" {
		t.Errorf("td_attributes %s", c.Platform["td_attributes"])
	}
	if len(c.RTMRs) != 4 || len(c.ReportData) != 64 {
		t.Errorf("%d RTMRs, %d bytes of report data", len(c.RTMRs), len(c.ReportData))
	}
	if c.TCBStatus != "" {
		t.Errorf("TCB status %q offline", c.TCBStatus)
	}
}

// otherRoot returns a pool holding a generated self-signed certificate.
func otherRoot(t *testing.T) *x509.CertPool {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Not Intel SGX Root CA"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

func TestVerifyRejections(t *testing.T) {
	base := realQuote(t)
	flip := func(off int) func([]byte) []byte {
		return func(b []byte) []byte { b[off] ^= 1; return b }
	}
	// lastRootByte is a byte inside the base64 of the root certificate's
	// signature, the last PEM block of the chain.
	rootSig := bytes.LastIndex(base, []byte("-----END CERTIFICATE-----")) - 10
	tests := []struct {
		name string
		mut  func([]byte) []byte
		now  time.Time
		v    *Verifier
		want attest.Check
	}{
		{name: "tampered MRTD", mut: flip(offMRTD), want: attest.CheckSignature},
		{name: "tampered report data", mut: flip(offReportData), want: attest.CheckSignature},
		{name: "debug bit set after signing", mut: flip(offTDAttributes), want: attest.CheckSignature},
		{name: "tampered signature", mut: flip(offSignature + 5), want: attest.CheckSignature},
		{name: "tampered attestation key", mut: flip(offSignature + 64 + 5), want: attest.CheckSignature},
		{name: "tampered root certificate", mut: func(b []byte) []byte {
			b[rootSig] = map[bool]byte{true: 'B', false: 'A'}[b[rootSig] == 'A']
			return b
		}, want: attest.CheckCertificate},
		{name: "broken PCK chain PEM", mut: func(b []byte) []byte {
			i := bytes.LastIndex(b, []byte("-----BEGIN CERTIFICATE-----"))
			copy(b[i:], "-----BEGIN CERTIFICATX-----")
			return b
		}, want: attest.CheckCertificate},
		{name: "other trusted root", v: NewVerifier(&Options{Roots: otherRoot(t)}), want: attest.CheckCertificate},
		{name: "PCK certificate expired", now: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), want: attest.CheckExpired},
		{name: "before the root", now: time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC), want: attest.CheckExpired},
		{name: "truncated header", mut: func(b []byte) []byte { return b[:40] }, want: attest.CheckMalformed},
		{name: "truncated body", mut: func(b []byte) []byte { return b[:600] }, want: attest.CheckMalformed},
		{name: "truncated signature data", mut: func(b []byte) []byte { return b[:3000] }, want: attest.CheckMalformed},
		{name: "signed data too short for its fields", mut: func(b []byte) []byte {
			b = b[:signedDataOff+10]
			binary.LittleEndian.PutUint32(b[signedSizeOff:], 10)
			return b
		}, want: attest.CheckMalformed},
		{name: "QE report truncated (go-tdx-guest's decoder panics)", mut: func(b []byte) []byte {
			b = b[:signedDataOff+400]
			binary.LittleEndian.PutUint32(b[signedSizeOff:], 400)
			binary.LittleEndian.PutUint32(b[signedDataOff+128+2:], 400-134)
			return b
		}, want: attest.CheckMalformed},
		{name: "certification data size lies", mut: func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[signedDataOff+128+2:], 1<<30)
			return b
		}, want: attest.CheckMalformed},
		{name: "QE auth data size lies", mut: func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[signedDataOff+128+6+384+64:], 0xffff)
			return b
		}, want: attest.CheckMalformed},
		{name: "trailing data", mut: func(b []byte) []byte { return append(b, 1) }, want: attest.CheckMalformed},
		{name: "version 3", mut: func(b []byte) []byte { b[0] = 3; return b }, want: attest.CheckMalformed},
		{name: "SGX TEE type", mut: func(b []byte) []byte { b[4] = 0; return b }, want: attest.CheckMalformed},
		{name: "attestation key type 3", mut: func(b []byte) []byte { b[2] = 3; return b }, want: attest.CheckMalformed},
		{name: "garbage", mut: func(b []byte) []byte { return bytes.Repeat([]byte{0x5a}, len(b)) }, want: attest.CheckMalformed},
		{name: "oversized", mut: func(b []byte) []byte { return make([]byte, attest.MaxEvidenceSize+1) }, want: attest.CheckMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(base)
			if tc.mut != nil {
				b = tc.mut(b)
			}
			v := tc.v
			if v == nil {
				v = NewVerifier(nil)
			}
			now := tc.now
			if now.IsZero() {
				now = vectorTime
			}
			_, err := v.Verify(context.Background(), evidence(b), &attest.VerifyOptions{Now: now})
			wantCheck(t, err, tc.want)
		})
	}
}

func TestVerifyNoEvidence(t *testing.T) {
	for _, ev := range []*attest.Evidence{nil, {Version: 1, TEE: attest.SEVSNP, Report: []byte{1}}} {
		_, err := NewVerifier(nil).Verify(context.Background(), ev, nil)
		wantCheck(t, err, attest.CheckMalformed)
	}
}

func TestCheckerRealVector(t *testing.T) {
	ev := evidence(realQuote(t))
	c0, err := NewVerifier(nil).Verify(context.Background(), ev, &attest.VerifyOptions{Now: vectorTime})
	if err != nil {
		t.Fatal(err)
	}
	mrtd, _ := hex.DecodeString(vectorMRTD)
	other := bytes.Clone(mrtd)
	other[0] ^= 0xff
	pol := func(m []byte, status ...string) *attest.Policy {
		return &attest.Policy{Allow: []attest.TEE{attest.TDX}, TDX: &attest.TDXPolicy{Measurement: []attest.Hex{m}, TCBStatus: status}}
	}
	tests := []struct {
		name       string
		policy     *attest.Policy
		reportData []byte
		want       attest.Check
	}{
		{name: "accepted", policy: pol(mrtd), reportData: c0.ReportData},
		{name: "measurement mismatch", policy: pol(other), want: attest.CheckMeasurement},
		{name: "wrong report data", policy: pol(mrtd), reportData: []byte("not the nonce"), want: attest.CheckReportData},
		{name: "TCB status required offline", policy: pol(mrtd, "UpToDate"), want: attest.CheckTCB},
		{name: "RTMR pinned to another value", policy: func() *attest.Policy {
			p := pol(mrtd)
			p.TDX.RTMRs = map[int]attest.Hex{2: make([]byte, 48)}
			p.TDX.RTMRs[2][0] = 1
			return p
		}(), want: attest.CheckMeasurement},
	}
	checker := attest.NewChecker(NewVerifier(nil))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checker.Check(context.Background(), ev, tc.policy, &attest.CheckOptions{Now: vectorTime, ReportData: tc.reportData})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			wantCheck(t, err, tc.want)
		})
	}
}

// TestDebugClaim tests the debug decision at the claims layer: a quote with
// TD_ATTRIBUTES.DEBUG set cannot be made here without forging Intel's
// signatures (go-tdx-guest has no test-only PCK chain generator), so the
// real quote is parsed, the bit is set in the parsed body, and the claims
// and the policy are checked on that.
func TestDebugClaim(t *testing.T) {
	q, err := ParseQuote(realQuote(t))
	if err != nil {
		t.Fatal(err)
	}
	if claims(q, "").Debug {
		t.Fatal("debug claimed for the real quote")
	}
	q.Proto.TdQuoteBody.TdAttributes[0] |= 1
	c := claims(q, "")
	if !c.Debug {
		t.Fatal("TD_ATTRIBUTES bit 0 set but no debug claim")
	}
	p := &attest.Policy{Allow: []attest.TEE{attest.TDX}}
	wantCheck(t, p.Evaluate(c, nil), attest.CheckDebug)
	p.Debug = true
	if err := p.Evaluate(c, nil); err != nil {
		t.Fatalf("debug allowed by policy: %v", err)
	}
	// Other attribute bits are not debug.
	q.Proto.TdQuoteBody.TdAttributes[0] = 0xfe
	if claims(q, "").Debug {
		t.Fatal("bits other than 0 claimed as debug")
	}
}

// TestCollateral verifies go-tdx-guest's sample quote online against its
// sample Intel collateral (served by its test getter). That collateral was
// updated after the quote was taken, so no TCB level matches the quote's
// TEE_TCB_SVN (go-tdx-guest's own tests expect the same): the quote passes
// every signature and chain check and is rejected on its TCB. An
// UpToDate quote with matching collateral is not available offline.
func TestCollateral(t *testing.T) {
	v := NewVerifier(&Options{Getter: tdxtest.TestGetter})
	ctx := context.Background()
	tests := []struct {
		name   string
		quote  []byte
		now    time.Time
		getter *tdxtest.Getter
		want   attest.Check
	}{
		{name: "no matching TCB level", quote: sampleQuote(t), now: sampleTime, want: attest.CheckTCB},
		{name: "collateral expired", quote: sampleQuote(t), now: sampleTime.AddDate(1, 0, 0), want: attest.CheckExpired},
		{name: "collateral unavailable", quote: sampleQuote(t), now: sampleTime,
			getter: &tdxtest.Getter{Responses: map[string]tdxtest.HTTPResponse{}}, want: attest.CheckCertificate},
		{name: "sample with its test-only trailing bytes", quote: testdata.RawQuote, now: sampleTime, want: attest.CheckMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := v
			if tc.getter != nil {
				v = NewVerifier(&Options{Getter: tc.getter})
			}
			_, err := v.Verify(ctx, evidence(tc.quote), &attest.VerifyOptions{Now: tc.now})
			wantCheck(t, err, tc.want)
		})
	}
	// Offline, the same sample quote verifies: signatures and chain are good.
	c, err := NewVerifier(nil).Verify(ctx, evidence(sampleQuote(t)), &attest.VerifyOptions{Now: sampleTime})
	if err != nil {
		t.Fatalf("offline Verify of the sample quote: %v", err)
	}
	if c.TCBStatus != "" {
		t.Errorf("TCB status %q offline", c.TCBStatus)
	}
}

func TestParseQuoteZeroPadding(t *testing.T) {
	b := realQuote(t)
	q, err := ParseQuote(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Raw) >= len(b) || !bytes.Equal(q.Raw, b[:len(q.Raw)]) {
		t.Fatalf("Raw is %d bytes of %d, want the quote without its zero padding", len(q.Raw), len(b))
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sampleQuote(f))
	f.Add(make([]byte, 700))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuote(b)
		if err != nil {
			if c, ok := attest.CheckOf(err); !ok || c != attest.CheckMalformed {
				t.Fatalf("error %v is not malformed", err)
			}
			return
		}
		if !bytes.Equal(q.Raw, b[:len(q.Raw)]) {
			t.Fatal("Raw is not a prefix of the input")
		}
	})
}

// BenchmarkVerify verifies the real quote offline: PCK chain (two ECDSA
// P-256 certificate signatures and x509 path building), QE report signature
// and quote signature.
func BenchmarkVerify(b *testing.B) {
	ev := evidence(realQuote(b))
	v := NewVerifier(nil)
	ctx := context.Background()
	opts := &attest.VerifyOptions{Now: vectorTime}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, ev, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkP256Verify is the baseline: one ecdsa.Verify with P-256 over a
// SHA-256 digest, the quote's signature primitive.
func BenchmarkP256Verify(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256(make([]byte, headerSize+bodySize))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.Verify(&key.PublicKey, digest[:], r, s) {
			b.Fatal("verify failed")
		}
	}
}

// FuzzVerify runs mutated copies of go-tdx-guest's sample quote through the
// whole offline verifier: it must never panic, every error must be an
// *attest.Error, and nothing but the signed quote may verify.
func FuzzVerify(f *testing.F) {
	good := sampleQuote(f)
	v := NewVerifier(nil)
	f.Add(uint16(offMRTD), byte(1))
	f.Add(uint16(offSignature+70), byte(0x80))
	f.Add(uint16(0), byte(0))
	f.Fuzz(func(t *testing.T, off uint16, x byte) {
		b := bytes.Clone(good)
		b[int(off)%len(b)] ^= x
		_, err := v.Verify(context.Background(), evidence(b), &attest.VerifyOptions{Now: sampleTime})
		if err == nil {
			// A flip in a PEM line break or base64 padding can leave the
			// same certificates; the signed header and body must be intact.
			if !bytes.Equal(b[:signedSizeOff], good[:signedSizeOff]) {
				t.Fatalf("a quote with a changed body verified (offset %d)", int(off)%len(b))
			}
			return
		}
		if _, ok := attest.CheckOf(err); !ok {
			t.Fatalf("error %v is not an *attest.Error", err)
		}
	})
}
