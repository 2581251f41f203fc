package tpm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-tpm/tpm2"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/tpm"
	"github.com/chatmcp/chatmcp/attest/tpm/internal/fake"
	"github.com/chatmcp/chatmcp/internal/testvectors"
)

var testTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// vectorDir returns ../shared/testvectors/tpm beside the repository root, or
// "" when it is absent.
func vectorDir() string {
	if root := testvectors.Root(); root != "" {
		return filepath.Join(root, "tpm")
	}
	return ""
}

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	dir := vectorDir()
	if dir == "" {
		t.Skip("TPM test vectors not found at ../shared/testvectors/tpm (they live beside the checkout)")
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantCheck(t *testing.T, err error, want attest.Check) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want a %q rejection", want)
	}
	if got, ok := attest.CheckOf(err); !ok || got != want {
		t.Fatalf("error %v has check %q, want %q", err, got, want)
	}
}

func evidence(b []byte) *attest.Evidence {
	return &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.TPM, Report: b}
}

// TestSampleQuote parses the vector folder's tpm_quote_sample.bin. It is a
// bare TPMS_ATTEST (117 bytes) with no AK and no signature, so all it can
// prove is that ParseQuote reads a real TPM's quote structure at the right
// offsets; nothing in it can be verified.
func TestSampleQuote(t *testing.T) {
	b := readVector(t, "tpm_quote_sample.bin")
	a, q, err := tpm.ParseQuote(b)
	if err != nil {
		t.Fatalf("ParseQuote: %v", err)
	}
	if got := hex.EncodeToString(a.ExtraData.Buffer); got != "12345678" {
		t.Errorf("extraData %s, want 12345678", got)
	}
	if len(a.QualifiedSigner.Buffer) != 34 || a.ClockInfo.ResetCount != 16 || a.FirmwareVersion != 0x2016051100162800 {
		t.Errorf("qualified signer %d bytes, reset count %d, firmware %#x", len(a.QualifiedSigner.Buffer), a.ClockInfo.ResetCount, a.FirmwareVersion)
	}
	if len(q.PCRSelect.PCRSelections) != 1 || q.PCRSelect.PCRSelections[0].Hash != tpm2.TPMAlgSHA256 {
		t.Fatalf("selection %+v, want one SHA-256 bank", q.PCRSelect)
	}
	idx, err := tpm.SelectedPCRs(q.PCRSelect.PCRSelections[0])
	if err != nil || len(idx) != 3 || idx[0] != 0 || idx[2] != 2 {
		t.Errorf("selected PCRs %v (%v), want [0 1 2]", idx, err)
	}
	if got := hex.EncodeToString(q.PCRDigest.Buffer); got != "d8de2be2e8a319cddf3d1ce1a310f45e30fd335255278e4fcbd59a5f58887648" {
		t.Errorf("pcrDigest %s", got)
	}
	// One byte more or less is rejected.
	if _, _, err := tpm.ParseQuote(append(bytes.Clone(b), 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	if _, _, err := tpm.ParseQuote(b[:len(b)-1]); err == nil {
		t.Error("truncated quote accepted")
	}
}

// ca is a generated AK-certificate CA.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T) *ca {
	k := fake.P256(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake AK CA"},
		NotBefore: testTime.Add(-time.Hour), NotAfter: testTime.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{cert: c, key: k}
}

func (c *ca) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// issue certifies pub as an AK; mut adjusts the template.
func (c *ca) issue(t *testing.T, pub crypto.PublicKey, mut func(*x509.Certificate)) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "fake AK"},
		NotBefore: testTime.Add(-time.Hour), NotAfter: testTime.Add(time.Hour),
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if mut != nil {
		mut(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	rd := bytes.Repeat([]byte{9}, 64)
	ak := fake.P256(t)
	rsaAK, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	root := newCA(t)
	trusted := tpm.NewVerifier(&tpm.Options{TrustedAKs: []crypto.PublicKey{ak.Public(), rsaAK.Public()}})
	byCert := tpm.NewVerifier(&tpm.Options{Roots: root.pool()})

	t.Run("trusted ECDSA AK", func(t *testing.T) {
		c, err := trusted.Verify(ctx, evidence(fake.Encode(t, fake.NewBuilder(ak, rd).Build(t))), &attest.VerifyOptions{Now: testTime})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.ReportData, rd) || c.TEE != attest.TPM || c.Debug || !c.Time.IsZero() {
			t.Errorf("claims %+v", c)
		}
		h := sha256.New()
		for i := range 8 {
			h.Write(bytes.Repeat([]byte{byte(i)}, 32))
		}
		if !bytes.Equal(c.Measurement, h.Sum(nil)) || len(c.PCRs) != 8 || c.PCRs[3][0] != 3 {
			t.Errorf("measurement %x, PCRs %v", []byte(c.Measurement), c.PCRs)
		}
		if c.Platform["ak_trust"] != "trusted key" || c.Platform["pcr_bank"] != "sha256" {
			t.Errorf("platform %v", c.Platform)
		}
	})
	t.Run("trusted RSA AK", func(t *testing.T) {
		if _, err := trusted.Verify(ctx, evidence(fake.Encode(t, fake.NewBuilder(rsaAK, rd).Build(t))), nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AK certificate", func(t *testing.T) {
		b := fake.NewBuilder(ak, rd)
		b.AKCerts = [][]byte{root.issue(t, ak.Public(), nil)}
		c, err := byCert.Verify(ctx, evidence(fake.Encode(t, b.Build(t))), &attest.VerifyOptions{Now: testTime})
		if err != nil {
			t.Fatal(err)
		}
		if c.Platform["ak_trust"] != "certificate CN=fake AK" {
			t.Errorf("ak_trust %q", c.Platform["ak_trust"])
		}
		clocked := tpm.NewVerifier(&tpm.Options{Roots: root.pool(), Clock: func() time.Time { return testTime }})
		if _, err := clocked.Verify(ctx, evidence(fake.Encode(t, b.Build(t))), nil); err != nil {
			t.Errorf("rejected with an injected clock: %v", err)
		}
	})
	t.Run("short report data", func(t *testing.T) {
		c, err := trusted.Verify(ctx, evidence(fake.Encode(t, fake.NewBuilder(ak, []byte("abc")).Build(t))), nil)
		if err != nil {
			t.Fatal(err)
		}
		// Policy evaluation pads the expected value to the quote's length.
		p := &attest.Policy{Allow: []attest.TEE{attest.TPM}}
		if err := p.Evaluate(c, &attest.EvalOptions{ReportData: []byte("abc")}); err != nil {
			t.Errorf("expected report data of the same length rejected: %v", err)
		}
		wantCheck(t, p.Evaluate(c, &attest.EvalOptions{ReportData: rd}), attest.CheckReportData)
	})

	other := fake.P256(t)
	tests := []struct {
		name  string
		v     *tpm.Verifier
		build func(b *fake.Builder)
		now   time.Time
		want  attest.Check
	}{
		{"no trust configured", tpm.NewVerifier(nil), nil, testTime, attest.CheckCertificate},
		{"AK not listed", tpm.NewVerifier(&tpm.Options{TrustedAKs: []crypto.PublicKey{other.Public()}}), nil, testTime, attest.CheckCertificate},
		{"certificate but no roots", tpm.NewVerifier(nil), func(b *fake.Builder) {
			b.AKCerts = [][]byte{root.issue(t, ak.Public(), nil)}
		}, testTime, attest.CheckCertificate},
		{"certificate from another CA", byCert, func(b *fake.Builder) {
			b.AKCerts = [][]byte{newCA(t).issue(t, ak.Public(), nil)}
		}, testTime, attest.CheckCertificate},
		{"certificate for another key", byCert, func(b *fake.Builder) {
			b.AKCerts = [][]byte{root.issue(t, other.Public(), nil)}
		}, testTime, attest.CheckCertificate},
		{"certificate is a CA", byCert, func(b *fake.Builder) {
			b.AKCerts = [][]byte{root.issue(t, ak.Public(), func(c *x509.Certificate) { c.IsCA = true; c.KeyUsage |= x509.KeyUsageCertSign })}
		}, testTime, attest.CheckCertificate},
		{"certificate without digitalSignature", byCert, func(b *fake.Builder) {
			b.AKCerts = [][]byte{root.issue(t, ak.Public(), func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment })}
		}, testTime, attest.CheckCertificate},
		{"unparsable certificate", byCert, func(b *fake.Builder) { b.AKCerts = [][]byte{[]byte("junk")} }, testTime, attest.CheckCertificate},
		{"certificate expired", byCert, func(b *fake.Builder) {
			b.AKCerts = [][]byte{root.issue(t, ak.Public(), nil)}
		}, testTime.Add(2 * time.Hour), attest.CheckExpired},
		{"AK not restricted", trusted, func(b *fake.Builder) { b.Attributes.Restricted = false }, testTime, attest.CheckCertificate},
		{"AK not for signing", trusted, func(b *fake.Builder) { b.Attributes.SignEncrypt = false }, testTime, attest.CheckCertificate},
		{"AK also decrypts", trusted, func(b *fake.Builder) { b.Attributes.Decrypt = true }, testTime, attest.CheckCertificate},
		{"AK not fixed to its TPM", trusted, func(b *fake.Builder) { b.Attributes.FixedTPM = false }, testTime, attest.CheckCertificate},
		{"signature hash SHA-1", trusted, func(b *fake.Builder) { b.SigHash = tpm2.TPMAlgSHA1 }, testTime, attest.CheckSignature},
		{"changed quote, re-signed, is accepted", trusted, func(b *fake.Builder) { b.MutateQuote = func(q *tpm2.TPMSAttest) { q.ClockInfo.Clock++ } }, testTime, ""},
		{"PCR digest mismatch", trusted, func(b *fake.Builder) {
			b.MutateQuote = func(q *tpm2.TPMSAttest) {
				qi, _ := q.Attested.Quote()
				qi.PCRDigest.Buffer = make([]byte, 32)
				q.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, qi)
			}
		}, testTime, attest.CheckSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := fake.NewBuilder(ak, rd)
			if tt.build != nil {
				tt.build(b)
			}
			_, err := tt.v.Verify(ctx, evidence(fake.Encode(t, b.Build(t))), &attest.VerifyOptions{Now: tt.now})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("a changed but correctly signed quote was rejected: %v", err)
				}
				return
			}
			wantCheck(t, err, tt.want)
		})
	}

	t.Run("signature swapped between quotes", func(t *testing.T) {
		a := fake.NewBuilder(ak, rd).Build(t)
		a.Signature = fake.NewBuilder(ak, []byte("other")).Build(t).Signature
		_, err := trusted.Verify(ctx, evidence(fake.Encode(t, a)), nil)
		wantCheck(t, err, attest.CheckSignature)
	})
	t.Run("RSA signature for an ECC AK", func(t *testing.T) {
		a := fake.NewBuilder(ak, rd).Build(t)
		a.Signature = fake.NewBuilder(rsaAK, rd).Build(t).Signature
		_, err := trusted.Verify(ctx, evidence(fake.Encode(t, a)), nil)
		wantCheck(t, err, attest.CheckSignature)
	})
	t.Run("ECDSA signature for an RSA AK", func(t *testing.T) {
		a := fake.NewBuilder(rsaAK, rd).Build(t)
		a.Signature = fake.NewBuilder(ak, rd).Build(t).Signature
		_, err := trusted.Verify(ctx, evidence(fake.Encode(t, a)), nil)
		wantCheck(t, err, attest.CheckSignature)
	})
	t.Run("envelope certificates", func(t *testing.T) {
		ev := evidence(fake.Encode(t, fake.NewBuilder(ak, rd).Build(t)))
		ev.Certs = [][]byte{root.cert.Raw}
		_, err := trusted.Verify(ctx, ev, nil)
		wantCheck(t, err, attest.CheckMalformed)
	})
	t.Run("wrong TEE", func(t *testing.T) {
		ev := evidence(fake.Encode(t, fake.NewBuilder(ak, rd).Build(t)))
		ev.TEE = attest.Nitro
		_, err := trusted.Verify(ctx, ev, nil)
		wantCheck(t, err, attest.CheckMalformed)
	})
	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := trusted.Verify(cctx, evidence(fake.Encode(t, fake.NewBuilder(ak, rd).Build(t))), nil)
		wantCheck(t, err, attest.CheckMalformed)
	})
}

// TestGCPRoot uses Google's vTPM EK/AK CA root from the vector folder as the
// trusted root. No GCE AK certificate is available here, so the test shows
// the root loads as a CA and that an AK certificate from any other CA is
// refused; acceptance of a certificate chain is shown with a generated CA in
// TestVerify.
func TestGCPRoot(t *testing.T) {
	block, _ := pem.Decode(readVector(t, "gcp-root-ca.pem"))
	if block == nil {
		t.Fatal("gcp-root-ca.pem is not PEM")
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !root.IsCA || root.KeyUsage&x509.KeyUsageCertSign == 0 || root.Subject.CommonName != "EK/AK CA Root" {
		t.Fatalf("GCP root: CA %v, key usage %v, subject %s", root.IsCA, root.KeyUsage, root.Subject)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	ak := fake.P256(t)
	b := fake.NewBuilder(ak, []byte("n"))
	b.AKCerts = [][]byte{newCA(t).issue(t, ak.Public(), nil)}
	_, err = tpm.NewVerifier(&tpm.Options{Roots: pool}).Verify(context.Background(), evidence(fake.Encode(t, b.Build(t))), &attest.VerifyOptions{Now: testTime})
	wantCheck(t, err, attest.CheckCertificate)
}

func TestParseMalformed(t *testing.T) {
	ak := fake.P256(t)
	valid := func() *tpm.Attestation { return fake.NewBuilder(ak, []byte("nonce")).Build(t) }
	enc := func(mut func(*tpm.Attestation)) []byte {
		a := valid()
		mut(a)
		return fake.Encode(t, a)
	}
	build := func(mut func(*fake.Builder)) []byte {
		b := fake.NewBuilder(ak, []byte("nonce"))
		mut(b)
		return fake.Encode(t, b.Build(t))
	}
	raw := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := fake.Encode(t, valid())
	// A definite map with one entry repeated: header count + 1.
	var m map[string]cbor.RawMessage
	if err := cbor.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	dup := append([]byte{good[0] + 1}, good[1:]...)
	dup = append(append(dup, raw("version")...), raw(1)...)
	indef := []byte{0xbf}
	for k, v := range m {
		indef = append(append(indef, raw(k)...), v...)
	}
	indef = append(indef, 0xff)
	pcrs := func(mut func(map[int][]byte)) func(*tpm.Attestation) {
		return func(a *tpm.Attestation) { mut(a.PCRs) }
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"garbage", []byte("garbage")},
		{"oversized", make([]byte, attest.MaxEvidenceSize+1)},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"truncated", good[:len(good)-1]},
		{"duplicate key", dup},
		{"indefinite length", indef},
		{"unknown field", raw(map[string]any{"version": 1, "extra": 1})},
		{"version 2", enc(func(a *tpm.Attestation) { a.Version = 2 })},
		{"missing quote", enc(func(a *tpm.Attestation) { a.Quote = nil })},
		{"missing signature", enc(func(a *tpm.Attestation) { a.Signature = nil })},
		{"missing ak_public", enc(func(a *tpm.Attestation) { a.AKPublic = nil })},
		{"no pcrs", enc(func(a *tpm.Attestation) { a.PCRs = nil })},
		{"oversized quote", enc(func(a *tpm.Attestation) { a.Quote = make([]byte, tpm.MaxQuoteLen+1) })},
		{"too many AK certificates", enc(func(a *tpm.Attestation) { a.AKCerts = [][]byte{{1}, {2}, {3}, {4}, {5}} })},
		{"empty AK certificate", enc(func(a *tpm.Attestation) { a.AKCerts = [][]byte{{}} })},
		{"quote trailing byte", enc(func(a *tpm.Attestation) { a.Quote = append(a.Quote, 0) })},
		{"quote truncated", enc(func(a *tpm.Attestation) { a.Quote = a.Quote[:len(a.Quote)-1] })},
		{"quote bad magic", enc(func(a *tpm.Attestation) { a.Quote[0] ^= 1 })},
		{"quote not a quote", enc(func(a *tpm.Attestation) { a.Quote[5] = 0x17 })},
		{"ak_public trailing byte", enc(func(a *tpm.Attestation) { a.AKPublic = append(a.AKPublic, 0) })},
		{"ak_public garbage", enc(func(a *tpm.Attestation) { a.AKPublic = []byte{0, 1, 2} })},
		{"ak_public off-curve point", enc(func(a *tpm.Attestation) { a.AKPublic[len(a.AKPublic)-1] ^= 1 })},
		{"signature trailing byte", enc(func(a *tpm.Attestation) { a.Signature = append(a.Signature, 0) })},
		{"pcr not selected", enc(pcrs(func(p map[int][]byte) { p[9] = make([]byte, 32) }))},
		{"selected pcr missing", enc(pcrs(func(p map[int][]byte) { delete(p, 3) }))},
		{"pcr of the wrong size", enc(pcrs(func(p map[int][]byte) { p[3] = make([]byte, 20) }))},
		{"SHA-1 bank with SHA-256 values", build(func(b *fake.Builder) { b.Bank = tpm2.TPMAlgSHA1 })},
		{"unknown bank", build(func(b *fake.Builder) { b.Bank = tpm2.TPMAlgSM3256 })},
		{"two banks", build(func(b *fake.Builder) {
			b.MutateQuote = func(q *tpm2.TPMSAttest) {
				qi, _ := q.Attested.Quote()
				qi.PCRSelect.PCRSelections = append(qi.PCRSelect.PCRSelections, qi.PCRSelect.PCRSelections[0])
				q.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, qi)
			}
		})},
		{"empty selection", build(func(b *fake.Builder) {
			b.MutateQuote = func(q *tpm2.TPMSAttest) {
				qi, _ := q.Attested.Quote()
				qi.PCRSelect.PCRSelections[0].PCRSelect = []byte{0, 0, 0}
				q.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, qi)
			}
		})},
		{"selection of 4 bytes", build(func(b *fake.Builder) {
			b.MutateQuote = func(q *tpm2.TPMSAttest) {
				qi, _ := q.Attested.Quote()
				qi.PCRSelect.PCRSelections[0].PCRSelect = append(qi.PCRSelect.PCRSelections[0].PCRSelect, 1)
				q.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, qi)
			}
		})},
		{"extraData over 64 bytes", build(func(b *fake.Builder) { b.ExtraData = make([]byte, 65) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tpm.Parse(tt.b)
			wantCheck(t, err, attest.CheckMalformed)
		})
	}
	if _, err := tpm.Parse(good); err != nil {
		t.Fatalf("the unmodified evidence is rejected: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	ak := fake.P256(f)
	f.Add(fake.Encode(f, fake.NewBuilder(ak, []byte("seed")).Build(f)))
	if dir := vectorDir(); dir != "" {
		if q, err := os.ReadFile(filepath.Join(dir, "tpm_quote_sample.bin")); err == nil {
			a := fake.NewBuilder(ak, nil).Build(f)
			a.Quote = q
			f.Add(fake.Encode(f, a))
		}
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := tpm.Parse(b)
		if err != nil {
			if _, ok := attest.CheckOf(err); !ok {
				t.Fatalf("error without a check: %v", err)
			}
			return
		}
		if p.AKKey == nil || p.QuoteInfo == nil || len(p.Raw.PCRs) == 0 || len(p.Attest.ExtraData.Buffer) > tpm.MaxExtraDataLen {
			t.Fatalf("parsed evidence breaks the invariants: %+v", p)
		}
		// Verification of anything the parser accepts must not panic.
		_, _ = tpm.NewVerifier(&tpm.Options{TrustedAKs: []crypto.PublicKey{p.AKKey}}).VerifyParsed(p, testTime)
	})
}
