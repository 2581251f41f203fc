package nitro_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/nitro"
	"github.com/chatmcp/chatmcp/attest/nitro/internal/fake"
	"github.com/chatmcp/chatmcp/internal/testvectors"
)

const (
	realPCR0      = "5cb702954321826d7939d6da829a940d787fcf32357beb8eae1ddf33c28c17d36f3ac3ba6828fdf7edeed02889702da6"
	realModuleID  = "i-0827e799ec9232d44-enc019b55a68bd2ed4b"
	awsRootSHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
)

var (
	realTime = time.Date(2025, 12, 25, 13, 15, 37, 0, time.UTC)
	dbgTime  = time.Date(2025, 12, 25, 8, 20, 46, 0, time.UTC)
)

// vectors returns ../shared/testvectors/nitro beside the repository root, or
// skips.
func vectors(t testing.TB) string {
	t.Helper()
	return testvectors.Dir(t, "nitro")
}

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func evidence(b []byte) *attest.Evidence {
	return &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.Nitro, Report: b}
}

func wantCheck(t *testing.T, err error, want attest.Check) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want a %q rejection", want)
	}
	got, ok := attest.CheckOf(err)
	if !ok || got != want {
		t.Fatalf("error %v has check %q, want %q", err, got, want)
	}
}

func TestEmbeddedRootFingerprint(t *testing.T) {
	root := nitro.AWSRoot()
	sum := sha256.Sum256(root.Raw)
	if got := hex.EncodeToString(sum[:]); got != awsRootSHA256 {
		t.Fatalf("embedded root SHA-256 %s, want AWS's published %s", got, awsRootSHA256)
	}
	if !root.IsCA || root.Subject.CommonName != "aws.nitro-enclaves" {
		t.Fatalf("embedded root: CA %v, subject %s", root.IsCA, root.Subject)
	}
	block, _ := pem.Decode(readVector(t, "AWS_NitroEnclaves_Root-G1.pem"))
	if block == nil || !bytes.Equal(block.Bytes, root.Raw) {
		t.Fatal("embedded root differs from the vector folder's AWS_NitroEnclaves_Root-G1.pem")
	}
}

func TestRealDocument(t *testing.T) {
	b := readVector(t, "nitro_attestation.cose")
	v := nitro.NewVerifier(nil)
	c, err := v.Verify(context.Background(), evidence(b), &attest.VerifyOptions{Now: realTime})
	if err != nil {
		t.Fatalf("real document rejected at its own time: %v", err)
	}
	if got := c.Measurement.String(); got != realPCR0 {
		t.Errorf("measurement %s, want %s", got, realPCR0)
	}
	if !bytes.Equal(c.ReportData, make([]byte, 64)) {
		t.Errorf("report data %x, want 64 zero bytes", []byte(c.ReportData))
	}
	if !c.Time.Truncate(time.Second).Equal(realTime) {
		t.Errorf("time %s, want %s", c.Time, realTime)
	}
	if c.Debug || c.TEE != attest.Nitro || c.Nonce != nil || c.PublicKey != nil {
		t.Errorf("claims %+v: want nitro, not debug, no nonce or public key", c)
	}
	if c.Platform["module_id"] != realModuleID {
		t.Errorf("module_id %q, want %q", c.Platform["module_id"], realModuleID)
	}
	if len(c.PCRs) != 16 || !bytes.Equal(c.PCRs[0], c.Measurement) {
		t.Errorf("%d PCRs, PCR0 %x; want 16 with PCR0 = measurement", len(c.PCRs), []byte(c.PCRs[0]))
	}
	// The same bytes, tagged (18), are accepted too.
	tagged := append([]byte{0xd2}, b...)
	if _, err := v.Verify(context.Background(), evidence(tagged), &attest.VerifyOptions{Now: realTime}); err != nil {
		t.Errorf("tagged form rejected: %v", err)
	}
	// The clock is used when the caller gives no time.
	clocked := nitro.NewVerifier(&nitro.Options{Clock: func() time.Time { return realTime }})
	if _, err := clocked.Verify(context.Background(), evidence(b), nil); err != nil {
		t.Errorf("rejected with an injected clock at its own time: %v", err)
	}
	// Auto-detection routes the raw file to Nitro.
	if got := attest.Detect(b); got != attest.Nitro {
		t.Errorf("Detect = %q, want nitro", got)
	}
}

func TestRealDocumentRejections(t *testing.T) {
	b := readVector(t, "nitro_attestation.cose")
	a, err := nitro.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	pcr0 := a.Document.PCRs[0]
	tamperedPayload := bytes.Clone(b)
	i := bytes.Index(tamperedPayload, pcr0)
	if i < 0 {
		t.Fatal("PCR0 not found in the document bytes")
	}
	tamperedPayload[i] ^= 1
	tamperedSig := bytes.Clone(b)
	tamperedSig[len(tamperedSig)-1] ^= 1
	other := fake.NewCA(t, fake.ChainOpts{})

	tests := []struct {
		name string
		doc  []byte
		opts *nitro.Options
		now  time.Time
		want attest.Check
	}{
		{"today", b, nil, time.Now(), attest.CheckExpired},
		{"before the leaf", b, nil, realTime.Add(-24 * time.Hour), attest.CheckExpired},
		{"tampered payload", tamperedPayload, nil, realTime, attest.CheckSignature},
		{"tampered signature", tamperedSig, nil, realTime, attest.CheckSignature},
		{"wrong root", b, &nitro.Options{Roots: other.Roots()}, realTime, attest.CheckCertificate},
		{"empty root pool", b, &nitro.Options{Roots: x509.NewCertPool()}, realTime, attest.CheckCertificate},
		{"truncated", b[:len(b)-10], nil, realTime, attest.CheckMalformed},
		{"trailing data", append(bytes.Clone(b), 0x00), nil, realTime, attest.CheckMalformed},
		{"oversized", append(bytes.Clone(b), make([]byte, attest.MaxEvidenceSize)...), nil, realTime, attest.CheckMalformed},
		{"garbage", []byte("not a COSE document at all"), nil, realTime, attest.CheckMalformed},
		{"empty", nil, nil, realTime, attest.CheckMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := nitro.NewVerifier(tt.opts).Verify(context.Background(), evidence(tt.doc), &attest.VerifyOptions{Now: tt.now})
			wantCheck(t, err, tt.want)
		})
	}
}

func TestRealDocumentPolicy(t *testing.T) {
	b := readVector(t, "nitro_attestation.cose")
	dbg := readVector(t, "nitro_attestation_dbg.cose")
	checker := attest.NewChecker(nitro.NewVerifier(nil))
	policy := func(t *testing.T, y string) *attest.Policy {
		t.Helper()
		p, err := attest.ParsePolicy([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "allow: [nitro]\nnitro:\n  measurement: [" + realPCR0 + "]\n"
	other := strings.Repeat("ab", 48)
	tests := []struct {
		name   string
		doc    []byte
		now    time.Time
		policy string
		rd     []byte
		want   attest.Check // "" means accepted
	}{
		{"accepted", b, realTime, good, make([]byte, 64), ""},
		{"report data prefix padded", b, realTime, good, nil, ""},
		{"wrong report data", b, realTime, good, []byte("another nonce"), attest.CheckReportData},
		{"measurement mismatch", b, realTime, "allow: [nitro]\nnitro:\n  measurement: [" + other + "]\n", nil, attest.CheckMeasurement},
		{"pcr mismatch", b, realTime, "allow: [nitro]\nnitro:\n  pcrs: {8: " + other + "}\n", nil, attest.CheckMeasurement},
		{"not allowed", b, realTime, "allow: [sevsnp]\n", nil, attest.CheckNotAllowed},
		{"debug rejected", dbg, dbgTime, "allow: [nitro]\n", nil, attest.CheckDebug},
		{"debug allowed", dbg, dbgTime, "allow: [nitro]\ndebug: true\n", nil, ""},
		{"too old", b, realTime.Add(10 * time.Minute), "allow: [nitro]\nmax_age: 5m\n", nil, attest.CheckExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := checker.Check(context.Background(), evidence(tt.doc), policy(t, tt.policy), &attest.CheckOptions{Now: tt.now, ReportData: tt.rd})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if want := bytes.Equal(tt.doc, dbg); c.Debug != want {
					t.Errorf("claims debug %v, want %v", c.Debug, want)
				}
				return
			}
			wantCheck(t, err, tt.want)
		})
	}
}

func TestFakeDocuments(t *testing.T) {
	f := fake.NewCA(t, fake.ChainOpts{})
	rd := bytes.Repeat([]byte{7}, 64)
	base := f.Fields(rd)
	verify := func(t *testing.T, ca *fake.CA, doc []byte) (*attest.Claims, error) {
		t.Helper()
		return nitro.NewVerifier(&nitro.Options{Roots: ca.Roots()}).Verify(context.Background(), evidence(doc), &attest.VerifyOptions{Now: fake.Time()})
	}

	t.Run("accepted with nonce and public key", func(t *testing.T) {
		fields := fake.With(fake.With(base, "nonce", []byte("fresh nonce")), "public_key", []byte("enclave public key"))
		c, err := verify(t, f, f.Doc(t, fields))
		if err != nil {
			t.Fatal(err)
		}
		if string(c.Nonce) != "fresh nonce" || string(c.PublicKey) != "enclave public key" || !bytes.Equal(c.ReportData, rd) {
			t.Errorf("claims nonce %q public key %q report data %x", c.Nonce, c.PublicKey, []byte(c.ReportData))
		}
		if c.Debug || !c.Time.Equal(fake.Time()) || c.Measurement[0] != 0xaa {
			t.Errorf("claims debug %v time %s measurement %x", c.Debug, c.Time, []byte(c.Measurement))
		}
	})
	t.Run("optional fields absent", func(t *testing.T) {
		fields := fake.Without(fake.Without(fake.Without(base, "nonce"), "public_key"), "user_data")
		c, err := verify(t, f, f.Doc(t, fields))
		if err != nil {
			t.Fatal(err)
		}
		if c.ReportData != nil {
			t.Errorf("report data %x, want none", []byte(c.ReportData))
		}
	})
	t.Run("debug", func(t *testing.T) {
		c, err := verify(t, f, f.Doc(t, fake.With(base, "pcrs", fake.PCRMap(0, 0, 0))))
		if err != nil {
			t.Fatal(err)
		}
		if !c.Debug {
			t.Error("all-zero PCR0..2 not flagged debug")
		}
	})
	t.Run("one zero PCR is not debug", func(t *testing.T) {
		c, err := verify(t, f, f.Doc(t, fake.With(base, "pcrs", fake.PCRMap(0, 0, 1))))
		if err != nil {
			t.Fatal(err)
		}
		if c.Debug {
			t.Error("PCR2 non-zero but flagged debug")
		}
	})

	chainTests := []struct {
		name string
		opts fake.ChainOpts
	}{
		{"intermediate not a CA", fake.ChainOpts{InterNotCA: true}},
		{"intermediate without certSign", fake.ChainOpts{InterNoCertSign: true}},
		{"leaf is a CA", fake.ChainOpts{LeafIsCA: true}},
		{"leaf without digitalSignature", fake.ChainOpts{LeafNoDigSig: true}},
		{"leaf key on P-256", fake.ChainOpts{LeafP256: true}},
	}
	for _, tt := range chainTests {
		t.Run(tt.name, func(t *testing.T) {
			ca := fake.NewCA(t, tt.opts)
			var doc []byte
			if tt.opts.LeafP256 {
				doc = fake.Sign(t, ca.LeafKey, cose.AlgorithmES384, fake.EncodeMap(t, ca.Fields(rd)))
			} else {
				doc = ca.Doc(t, ca.Fields(rd))
			}
			_, err := verify(t, ca, doc)
			wantCheck(t, err, attest.CheckCertificate)
		})
	}

	t.Run("signed by another key", func(t *testing.T) {
		doc := fake.Sign(t, fake.P384(t), cose.AlgorithmES384, fake.EncodeMap(t, base))
		_, err := verify(t, f, doc)
		wantCheck(t, err, attest.CheckSignature)
	})
	t.Run("leaf not in the cabundle chain", func(t *testing.T) {
		g := fake.NewCA(t, fake.ChainOpts{})
		doc := f.Doc(t, fake.With(base, "cabundle", [][]byte{g.Root.Raw, g.Inter.Raw}))
		_, err := verify(t, f, doc)
		wantCheck(t, err, attest.CheckCertificate)
	})
	t.Run("unparsable cabundle entry", func(t *testing.T) {
		doc := f.Doc(t, fake.With(base, "cabundle", [][]byte{f.Root.Raw, []byte("junk")}))
		_, err := verify(t, f, doc)
		wantCheck(t, err, attest.CheckCertificate)
	})
	t.Run("unparsable leaf", func(t *testing.T) {
		doc := f.Doc(t, fake.With(base, "certificate", []byte("junk")))
		_, err := verify(t, f, doc)
		wantCheck(t, err, attest.CheckCertificate)
	})
	t.Run("envelope certificates", func(t *testing.T) {
		ev := evidence(f.Doc(t, base))
		ev.Certs = [][]byte{f.Root.Raw}
		_, err := nitro.NewVerifier(&nitro.Options{Roots: f.Roots()}).Verify(context.Background(), ev, &attest.VerifyOptions{Now: fake.Time()})
		wantCheck(t, err, attest.CheckMalformed)
	})
	t.Run("wrong TEE", func(t *testing.T) {
		ev := evidence(f.Doc(t, base))
		ev.TEE = attest.TPM
		_, err := nitro.NewVerifier(nil).Verify(context.Background(), ev, nil)
		wantCheck(t, err, attest.CheckMalformed)
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := nitro.NewVerifier(&nitro.Options{Roots: f.Roots()}).Verify(ctx, evidence(f.Doc(t, base)), &attest.VerifyOptions{Now: fake.Time()})
		wantCheck(t, err, attest.CheckMalformed)
	})
}

func TestParseMalformed(t *testing.T) {
	f := fake.NewCA(t, fake.ChainOpts{})
	base := f.Fields(make([]byte, 64))
	big := make([]byte, 1025)
	pcrs := func(mut func(map[uint64][]byte)) map[uint64][]byte {
		m := fake.PCRMap(1, 2, 3)
		mut(m)
		return m
	}
	p256, err := newP256()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		doc  []byte
	}{
		{"duplicate key", f.Doc(t, append(base, fake.KV{K: "digest", V: "SHA384"}))},
		{"unknown field", f.Doc(t, fake.With(base, "extra", 1))},
		{"case-folded field", f.Doc(t, append(fake.Without(base, "nonce"), fake.KV{K: "NONCE", V: []byte{1}}))},
		{"missing module_id", f.Doc(t, fake.Without(base, "module_id"))},
		{"empty module_id", f.Doc(t, fake.With(base, "module_id", ""))},
		{"missing digest", f.Doc(t, fake.Without(base, "digest"))},
		{"digest SHA256", f.Doc(t, fake.With(base, "digest", "SHA256"))},
		{"missing timestamp", f.Doc(t, fake.Without(base, "timestamp"))},
		{"zero timestamp", f.Doc(t, fake.With(base, "timestamp", uint64(0)))},
		{"negative timestamp", f.Doc(t, fake.With(base, "timestamp", -5))},
		{"timestamp as text", f.Doc(t, fake.With(base, "timestamp", "yesterday"))},
		{"missing pcrs", f.Doc(t, fake.Without(base, "pcrs"))},
		{"pcr of 32 bytes", f.Doc(t, fake.With(base, "pcrs", pcrs(func(m map[uint64][]byte) { m[3] = make([]byte, 32) })))},
		{"pcr index 32", f.Doc(t, fake.With(base, "pcrs", pcrs(func(m map[uint64][]byte) { m[32] = make([]byte, 48) })))},
		{"missing pcr1", f.Doc(t, fake.With(base, "pcrs", pcrs(func(m map[uint64][]byte) { delete(m, 1) })))},
		{"missing certificate", f.Doc(t, fake.Without(base, "certificate"))},
		{"oversized certificate", f.Doc(t, fake.With(base, "certificate", big))},
		{"missing cabundle", f.Doc(t, fake.Without(base, "cabundle"))},
		{"empty cabundle", f.Doc(t, fake.With(base, "cabundle", [][]byte{}))},
		{"cabundle too long", f.Doc(t, fake.With(base, "cabundle", [][]byte{{1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}}))},
		{"empty cabundle entry", f.Doc(t, fake.With(base, "cabundle", [][]byte{{}}))},
		{"oversized user_data", f.Doc(t, fake.With(base, "user_data", big))},
		{"oversized nonce", f.Doc(t, fake.With(base, "nonce", big))},
		{"oversized public_key", f.Doc(t, fake.With(base, "public_key", big))},
		{"user_data as text", f.Doc(t, fake.With(base, "user_data", "text"))},
		{"payload trailing byte", fake.Sign(t, f.LeafKey, cose.AlgorithmES384, append(fake.EncodeMap(t, base), 0))},
		{"payload not a map", fake.Sign(t, f.LeafKey, cose.AlgorithmES384, []byte{0x01})},
		{"empty payload", fake.Sign(t, f.LeafKey, cose.AlgorithmES384, []byte{})},
		{"algorithm ES256", fake.Sign(t, p256, cose.AlgorithmES256, fake.EncodeMap(t, base))},
		{"not COSE", []byte{0x84, 0x01, 0x02, 0x03, 0x04}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := nitro.Parse(tt.doc)
			wantCheck(t, err, attest.CheckMalformed)
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"nitro_attestation.cose", "nitro_attestation_dbg.cose"} {
		if b, err := os.ReadFile(filepath.Join(vectorsNoSkip(), name)); err == nil {
			f.Add(b)
		}
	}
	ca := fake.NewCA(f, fake.ChainOpts{})
	f.Add(ca.Doc(f, ca.Fields([]byte("x"))))
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := nitro.Parse(b)
		if err != nil {
			if _, ok := attest.CheckOf(err); !ok {
				t.Fatalf("error without a check: %v", err)
			}
			return
		}
		d := a.Document
		if d.Digest != nitro.DigestSHA384 || len(d.PCRs[0]) != 48 || len(d.CABundle) == 0 || len(d.UserData) > nitro.MaxUserDataLen {
			t.Fatalf("parsed a document that breaks the invariants: %+v", d)
		}
		_ = a.Claims()
	})
}
