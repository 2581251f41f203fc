package sevsnp

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevtest "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/trust"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantCheck asserts that err is an *attest.Error with check want.
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
	ev := realEvidence(t)
	c, err := NewVerifier(nil).Verify(context.Background(), ev, &attest.VerifyOptions{Now: vectorTime})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.TEE != attest.SEVSNP {
		t.Errorf("TEE %q", c.TEE)
	}
	if got := hex.EncodeToString(c.Measurement); got != vectorMeasurement {
		t.Errorf("measurement %s, want %s", got, vectorMeasurement)
	}
	wantRD := make([]byte, 64)
	copy(wantRD, vectorReportData)
	if !bytes.Equal(c.ReportData, wantRD) {
		t.Errorf("report data %x, want %x", []byte(c.ReportData), wantRD)
	}
	if c.Debug {
		t.Error("debug set for policy 0x30000")
	}
	if c.VMPL == nil || *c.VMPL != 0 {
		t.Errorf("VMPL %v, want 0", c.VMPL)
	}
	if c.TCB == nil {
		t.Fatal("no TCB claim for a Milan report")
	}
	if c.Platform["product_line"] != "Milan" || c.Platform["signing_key"] != "VCEK" || len(c.Platform["chip_id"]) != 128 {
		t.Errorf("platform %v", c.Platform)
	}
	if c.Platform["policy"] != "0x30000" {
		t.Errorf("policy %s, want 0x30000", c.Platform["policy"])
	}
}

func TestVerifyRealVectorRejections(t *testing.T) {
	base := realEvidence(t)
	fake := newFakeChain(t, kds.TCBParts{}, make([]byte, 64))
	flip := func(off int) func(*attest.Evidence) {
		return func(ev *attest.Evidence) { ev.Report[off] ^= 1 }
	}
	tests := []struct {
		name   string
		mut    func(*attest.Evidence)
		now    time.Time
		warm   bool // verify the untouched evidence first, so the VCEK is cached
		want   attest.Check
		reason string
	}{
		{name: "tampered body", mut: flip(0x90), want: attest.CheckSignature},
		{name: "tampered body cached key", mut: flip(0x90), warm: true, want: attest.CheckSignature},
		{name: "tampered report data", mut: flip(0x50), want: attest.CheckSignature},
		{name: "tampered signature R", mut: flip(0x2A0), want: attest.CheckSignature},
		{name: "tampered signature S cached key", mut: flip(0x2E8), warm: true, want: attest.CheckSignature},
		{name: "tampered reported TCB", mut: flip(0x180), want: attest.CheckSignature},
		{name: "VCEK expired", now: time.Date(2034, 1, 1, 0, 0, 0, 0, time.UTC), want: attest.CheckExpired},
		{name: "VCEK expired cached key", now: time.Date(2034, 1, 1, 0, 0, 0, 0, time.UTC), warm: true, want: attest.CheckExpired},
		{name: "VCEK not yet valid", now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), want: attest.CheckExpired},
		{name: "no VCEK offline", mut: func(ev *attest.Evidence) { ev.Certs = nil }, want: attest.CheckCertificate},
		{name: "only the ASK", mut: func(ev *attest.Evidence) { ev.Certs = ev.Certs[1:] }, want: attest.CheckCertificate},
		{name: "fake VCEK against AMD roots", mut: func(ev *attest.Evidence) { ev.Certs = [][]byte{fake.signer.Vcek.Raw} }, want: attest.CheckCertificate},
		{name: "truncated", mut: func(ev *attest.Evidence) { ev.Report = ev.Report[:ReportSize-1] }, want: attest.CheckMalformed},
		{name: "oversized", mut: func(ev *attest.Evidence) { ev.Report = append(ev.Report, 0) }, want: attest.CheckMalformed},
		{name: "garbage", mut: func(ev *attest.Evidence) { ev.Report = bytes.Repeat([]byte{0xee}, ReportSize) }, want: attest.CheckMalformed},
		{name: "wrong TEE", mut: func(ev *attest.Evidence) { ev.TEE = attest.TDX }, want: attest.CheckMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVerifier(nil)
			if tc.warm {
				if _, err := v.Verify(context.Background(), realEvidence(t), &attest.VerifyOptions{Now: vectorTime}); err != nil {
					t.Fatalf("warming: %v", err)
				}
			}
			ev := &attest.Evidence{Version: base.Version, TEE: base.TEE, Report: bytes.Clone(base.Report), Certs: base.Certs}
			if tc.mut != nil {
				tc.mut(ev)
			}
			now := tc.now
			if now.IsZero() {
				now = vectorTime
			}
			_, err := v.Verify(context.Background(), ev, &attest.VerifyOptions{Now: now})
			wantCheck(t, err, tc.want)
		})
	}
}

func TestCheckerRealVector(t *testing.T) {
	ev := realEvidence(t)
	checker := attest.NewChecker(NewVerifier(nil))
	pol := func(meas ...string) *attest.Policy {
		p := &attest.Policy{Allow: []attest.TEE{attest.SEVSNP}, SEVSNP: &attest.SNPPolicy{}}
		for _, m := range meas {
			p.SEVSNP.Measurement = append(p.SEVSNP.Measurement, mustHex(t, m))
		}
		return p
	}
	other := "00" + vectorMeasurement[2:]
	tests := []struct {
		name       string
		policy     *attest.Policy
		reportData []byte
		want       attest.Check // "" means accepted
	}{
		{name: "accepted", policy: pol(vectorMeasurement), reportData: []byte(vectorReportData)},
		{name: "wrong report data", policy: pol(vectorMeasurement), reportData: []byte("another nonce"), want: attest.CheckReportData},
		{name: "measurement not allowed", policy: pol(other), reportData: []byte(vectorReportData), want: attest.CheckMeasurement},
		{name: "TCB below minimum", policy: func() *attest.Policy {
			p := pol(vectorMeasurement)
			p.SEVSNP.MinTCB = &attest.TCBVersion{SNP: 255}
			return p
		}(), want: attest.CheckTCB},
		{name: "not allowed", policy: &attest.Policy{Allow: []attest.TEE{attest.TDX}}, want: attest.CheckNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := checker.Check(context.Background(), ev, tc.policy, &attest.CheckOptions{Now: vectorTime, ReportData: tc.reportData})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if hex.EncodeToString(c.Measurement) != vectorMeasurement {
					t.Errorf("measurement %x", []byte(c.Measurement))
				}
				return
			}
			wantCheck(t, err, tc.want)
		})
	}
}

func TestCheckerFakeChain(t *testing.T) {
	tcb := kds.TCBParts{BlSpl: 3, TeeSpl: 0, SnpSpl: 8, UcodeSpl: 115}
	f := newFakeChain(t, tcb, chipID())
	checker := attest.NewChecker(f.verifier())
	meas := bytes.Repeat([]byte{0xa5}, 48)
	policy := &attest.Policy{Allow: []attest.TEE{attest.SEVSNP}, SEVSNP: &attest.SNPPolicy{
		Measurement: []attest.Hex{meas},
		MinTCB:      &attest.TCBVersion{BootLoader: 3, SNP: 8, Microcode: 115},
	}}
	tests := []struct {
		name   string
		mut    func(*spb.Report)
		policy func(*attest.Policy)
		want   attest.Check
	}{
		{name: "accepted"},
		{name: "debug", mut: func(r *spb.Report) { r.Policy |= 1 << 19 }, want: attest.CheckDebug},
		{name: "debug allowed by policy", mut: func(r *spb.Report) { r.Policy |= 1 << 19 }, policy: func(p *attest.Policy) { p.Debug = true }},
		{name: "VMPL 1", mut: func(r *spb.Report) { r.Vmpl = 1 }, want: attest.CheckVMPL},
		{name: "VMPL 1 required by policy", mut: func(r *spb.Report) { r.Vmpl = 1 }, policy: func(p *attest.Policy) { one := 1; p.SEVSNP.VMPL = &one }},
		{name: "TCB below minimum", policy: func(p *attest.Policy) { p.SEVSNP.MinTCB = &attest.TCBVersion{BootLoader: 3, SNP: 9, Microcode: 115} }, want: attest.CheckTCB},
		{name: "measurement not allowed", mut: func(r *spb.Report) { r.Measurement[0] = 0 }, want: attest.CheckMeasurement},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := *policy
			sp := *policy.SEVSNP
			p.SEVSNP = &sp
			if tc.policy != nil {
				tc.policy(&p)
			}
			c, err := checker.Check(context.Background(), f.evidence(f.report(t, tc.mut)), &p, &attest.CheckOptions{Now: fakeNow})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if *c.TCB != (attest.TCBVersion{BootLoader: 3, SNP: 8, Microcode: 115}) {
					t.Errorf("TCB %v", c.TCB)
				}
				return
			}
			wantCheck(t, err, tc.want)
		})
	}
}

func TestVerifyFakeChainRejections(t *testing.T) {
	tcb := kds.TCBParts{BlSpl: 2, SnpSpl: 6, UcodeSpl: 100}
	f := newFakeChain(t, tcb, chipID())
	tests := []struct {
		name string
		ev   func() *attest.Evidence
		v    *Verifier
		now  time.Time
		want attest.Check
	}{
		{
			name: "fake chain against AMD roots",
			ev:   func() *attest.Evidence { return f.evidence(f.report(t, nil)) },
			v:    NewVerifier(nil),
			want: attest.CheckCertificate,
		},
		{
			name: "no roots for the product line",
			ev:   func() *attest.Evidence { return f.evidence(f.report(t, nil)) },
			v:    NewVerifier(&Options{Roots: map[string][]*trust.AMDRootCerts{"Genoa": f.roots["Milan"]}}),
			want: attest.CheckCertificate,
		},
		{
			name: "reported TCB is not the VCEK's",
			ev: func() *attest.Evidence {
				return f.evidence(f.report(t, func(r *spb.Report) { r.ReportedTcb++ }))
			},
			want: attest.CheckCertificate,
		},
		{
			name: "CHIP_ID is not the VCEK's",
			ev: func() *attest.Evidence {
				return f.evidence(f.report(t, func(r *spb.Report) { r.ChipId[0] ^= 0xff }))
			},
			want: attest.CheckCertificate,
		},
		{
			name: "VLEK-signed report without a VLEK",
			ev: func() *attest.Evidence {
				return f.evidence(f.report(t, func(r *spb.Report) {
					r.SignerInfo = abi.ComposeSignerInfo(abi.SignerInfo{SigningKey: abi.VlekReportSigner})
				}))
			},
			want: attest.CheckCertificate,
		},
		{
			name: "chain not yet valid",
			ev:   func() *attest.Evidence { return f.evidence(f.report(t, nil)) },
			now:  fakeTime.Add(-time.Hour),
			want: attest.CheckExpired,
		},
		{
			name: "signed by another key",
			ev: func() *attest.Evidence {
				ev := f.evidence(f.report(t, nil))
				other := newFakeChain(t, tcb, chipID())
				other.signer.Keys.Vcek = sevtest.DefaultVlek()
				ev.Report = other.report(t, nil)
				return ev
			},
			want: attest.CheckSignature,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.v
			if v == nil {
				v = f.verifier()
			}
			now := tc.now
			if now.IsZero() {
				now = fakeNow
			}
			_, err := v.Verify(context.Background(), tc.ev(), &attest.VerifyOptions{Now: now})
			wantCheck(t, err, tc.want)
		})
	}
}

// TestCacheSkipsChain shows a cached VCEK is not re-verified: once cached,
// verification succeeds even after the verifier's roots are emptied, while
// a fresh verifier without roots fails; and the cache still honours the
// chain's validity.
func TestCacheSkipsChain(t *testing.T) {
	f := newFakeChain(t, kds.TCBParts{SnpSpl: 1}, chipID())
	v := f.verifier()
	ev := f.evidence(f.report(t, nil))
	ctx := context.Background()
	if _, err := v.Verify(ctx, ev, &attest.VerifyOptions{Now: fakeNow}); err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	if n := v.keys.len(); n != 1 {
		t.Fatalf("%d cached keys, want 1", n)
	}
	v.roots = map[string][]*trust.AMDRootCerts{}
	if _, err := v.Verify(ctx, ev, &attest.VerifyOptions{Now: fakeNow}); err != nil {
		t.Fatalf("cached Verify: %v", err)
	}
	if _, err := v.Verify(ctx, ev, &attest.VerifyOptions{Now: fakeTime.Add(100 * 365 * 24 * time.Hour)}); err == nil {
		t.Fatal("cached key used after its chain expired")
	} else {
		wantCheck(t, err, attest.CheckExpired)
	}
	fresh := NewVerifier(&Options{Roots: map[string][]*trust.AMDRootCerts{}})
	_, err := fresh.Verify(ctx, ev, &attest.VerifyOptions{Now: fakeNow})
	wantCheck(t, err, attest.CheckCertificate)
}

// TestCachedKeyProductLine: a VCEK cached for Milan does not vouch for a
// report that says it comes from a Genoa, just as the chain walk would not.
func TestCachedKeyProductLine(t *testing.T) {
	f := newFakeChain(t, kds.TCBParts{}, chipID())
	genoa := f.evidence(f.report(t, func(r *spb.Report) { r.Cpuid1EaxFms = 0x00a10f10 }))
	for _, warm := range []bool{false, true} {
		v := f.verifier()
		if warm {
			if _, err := v.Verify(context.Background(), f.evidence(f.report(t, nil)), &attest.VerifyOptions{Now: fakeNow}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := v.Verify(context.Background(), genoa, &attest.VerifyOptions{Now: fakeNow})
		wantCheck(t, err, attest.CheckCertificate)
	}
}

func TestCacheBounded(t *testing.T) {
	c := newKeyCache(2)
	for i := range 5 {
		c.put([32]byte{byte(i)}, &endorsementKey{})
	}
	if n := c.len(); n != 2 {
		t.Fatalf("cache holds %d keys, want at most 2", n)
	}
}

func TestVCEKFromCacheDirAndKDS(t *testing.T) {
	f := newFakeChain(t, kds.TCBParts{BlSpl: 1, SnpSpl: 2, UcodeSpl: 3}, chipID())
	report := f.report(t, nil)
	ev := &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.SEVSNP, Report: report}
	tcb, _ := kds.ComposeTCBParts(f.tcb)
	name := VCEKFileName("Milan", chipID(), uint64(tcb))
	url := kds.VCEKCertURL("Milan", chipID(), tcb)
	ctx := context.Background()
	opts := &attest.VerifyOptions{Now: fakeNow}

	t.Run("cache dir", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), f.signer.Vcek.Raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NewVerifier(&Options{Roots: f.roots, CacheDir: dir}).Verify(ctx, ev, opts); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("cache dir miss offline", func(t *testing.T) {
		_, err := NewVerifier(&Options{Roots: f.roots, CacheDir: t.TempDir()}).Verify(ctx, ev, opts)
		wantCheck(t, err, attest.CheckCertificate)
	})
	t.Run("cache dir holds garbage", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := NewVerifier(&Options{Roots: f.roots, CacheDir: dir}).Verify(ctx, ev, opts)
		wantCheck(t, err, attest.CheckCertificate)
	})
	t.Run("KDS fills the cache dir", func(t *testing.T) {
		dir := t.TempDir()
		getter := sevtest.SimpleGetter(map[string][]byte{url: f.signer.Vcek.Raw})
		if _, err := NewVerifier(&Options{Roots: f.roots, CacheDir: dir, Getter: getter}).Verify(ctx, ev, opts); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, f.signer.Vcek.Raw) {
			t.Fatalf("cache file: %v (equal %v)", err, bytes.Equal(got, f.signer.Vcek.Raw))
		}
	})
	t.Run("KDS fails", func(t *testing.T) {
		getter := sevtest.SimpleGetter(map[string][]byte{})
		_, err := NewVerifier(&Options{Roots: f.roots, Getter: getter}).Verify(ctx, ev, opts)
		wantCheck(t, err, attest.CheckCertificate)
	})
	t.Run("masked CHIP_ID cannot be looked up", func(t *testing.T) {
		masked := newFakeChain(t, f.tcb, make([]byte, 64))
		ev := &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.SEVSNP, Report: masked.report(t, nil)}
		getter := sevtest.SimpleGetter(map[string][]byte{})
		_, err := NewVerifier(&Options{Roots: masked.roots, Getter: getter}).Verify(ctx, ev, opts)
		wantCheck(t, err, attest.CheckCertificate)
	})
}

// TestConcurrentVerify shares one verifier (and its key cache) between
// goroutines; run with -race.
func TestConcurrentVerify(t *testing.T) {
	f := newFakeChain(t, kds.TCBParts{}, chipID())
	v := f.verifier()
	good := f.evidence(f.report(t, nil))
	bad := f.evidence(f.report(t, nil))
	bad.Report[0x90] ^= 1
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			ev := good
			if i%2 == 1 {
				ev = bad
			}
			_, err := v.Verify(context.Background(), ev, &attest.VerifyOptions{Now: fakeNow})
			if (err == nil) != (i%2 == 0) {
				errs <- fmt.Errorf("goroutine %d: %v", i, err)
				return
			}
			errs <- nil
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestVerifyFakeChainMore covers the remaining rejection paths and a
// version 2 report, whose product line comes from the VCEK.
func TestVerifyFakeChainMore(t *testing.T) {
	ctx := context.Background()
	opts := &attest.VerifyOptions{Now: fakeNow}
	f := newFakeChain(t, kds.TCBParts{SnpSpl: 3}, chipID())

	t.Run("version 2 report", func(t *testing.T) {
		ev := f.evidence(f.report(t, func(r *spb.Report) { r.Version = 2; r.Cpuid1EaxFms = 0 }))
		c, err := f.verifier().Verify(ctx, ev, opts)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c.Platform["product_line"] != "Milan" || c.Platform["report_version"] != "2" {
			t.Errorf("platform %v", c.Platform)
		}
	})
	t.Run("VCEK without KDS extensions", func(t *testing.T) {
		b := &sevtest.AmdSignerBuilder{
			Keys: sevtest.DefaultAmdKeys(), ProductName: "Milan-B0",
			ArkCreationTime: fakeTime, AskCreationTime: fakeTime, AsvkCreationTime: fakeTime, VcekCreationTime: fakeTime,
			VcekCustom: sevtest.CertOverride{Extensions: []pkix.Extension{}},
		}
		s, err := b.TestOnlyCertChain()
		if err != nil {
			t.Fatal(err)
		}
		g := &fakeChain{signer: s, roots: f.roots, hwid: chipID(), tcb: kds.TCBParts{}}
		_, err = g.verifier().Verify(ctx, g.evidence(g.report(t, nil)), opts)
		wantCheck(t, err, attest.CheckCertificate)
	})
	t.Run("unknown product line with AMD roots", func(t *testing.T) {
		ev := f.evidence(f.report(t, func(r *spb.Report) { r.Cpuid1EaxFms = 0x00f00f00 }))
		_, err := NewVerifier(nil).Verify(ctx, ev, opts)
		wantCheck(t, err, attest.CheckCertificate)
	})
	t.Run("KDS returns nothing", func(t *testing.T) {
		ev := &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.SEVSNP, Report: f.report(t, nil)}
		tcb, _ := kds.ComposeTCBParts(f.tcb)
		getter := sevtest.SimpleGetter(map[string][]byte{kds.VCEKCertURL("Milan", chipID(), tcb): {}})
		_, err := NewVerifier(&Options{Roots: f.roots, Getter: getter}).Verify(ctx, ev, opts)
		wantCheck(t, err, attest.CheckCertificate)
	})
	t.Run("cache dir entry unreadable", func(t *testing.T) {
		dir := t.TempDir()
		tcb, _ := kds.ComposeTCBParts(f.tcb)
		if err := os.Mkdir(filepath.Join(dir, VCEKFileName("Milan", chipID(), uint64(tcb))), 0o700); err != nil {
			t.Fatal(err)
		}
		ev := &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.SEVSNP, Report: f.report(t, nil)}
		_, err := NewVerifier(&Options{Roots: f.roots, CacheDir: dir}).Verify(ctx, ev, opts)
		wantCheck(t, err, attest.CheckCertificate)
	})
	t.Run("no evidence", func(t *testing.T) {
		_, err := f.verifier().Verify(ctx, nil, opts)
		wantCheck(t, err, attest.CheckMalformed)
	})
}
