package sevsnp

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevtest "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/internal/testvectors"
)

// vectorTime is a time at which the real vector's VCEK (issued 2026-06-17,
// valid until 2033) and the Milan ASK and ARK are all valid.
var vectorTime = time.Date(2026, time.July, 1, 0, 0, 0, 0, time.UTC)

// The real vector's published values (testvectors/README.md).
const (
	vectorMeasurement = "7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d"
	vectorReportData  = "attest-test-fixture-2026"
)

// vectorsDir returns ../shared/testvectors/sevsnp beside the module root,
// skipping the test when it is absent.
func vectorsDir(t testing.TB) string {
	t.Helper()
	return testvectors.Dir(t, "sevsnp")
}

// pemDER reads a one-certificate PEM file as DER, as the CLI does for
// --certs.
func pemDER(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	return blk.Bytes
}

// realEvidence returns the real report with its VCEK and ASK as DER.
func realEvidence(t testing.TB) *attest.Evidence {
	t.Helper()
	dir := vectorsDir(t)
	rep, err := os.ReadFile(filepath.Join(dir, "sev_snp_report.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return &attest.Evidence{
		Version: attest.EnvelopeVersion,
		TEE:     attest.SEVSNP,
		Report:  rep,
		Certs: [][]byte{
			pemDER(t, filepath.Join(dir, "sev_snp_vcek.pem")),
			pemDER(t, filepath.Join(dir, "sev_snp_ask.pem")),
		},
	}
}

// fakeTime is when fake chains are made; fakeNow is when they are checked.
var (
	fakeTime = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	fakeNow  = time.Date(2026, time.June, 1, 0, 0, 0, 0, time.UTC)
)

// milanFMS is CPUID_1_EAX family/model/stepping of a Milan B0, as a version
// 3 report carries it.
const milanFMS = 0x00a00f10

// fakeChain is a generated ARK → ASK → VCEK chain, insecure test keys.
type fakeChain struct {
	signer *sevtest.AmdSigner
	roots  map[string][]*trust.AMDRootCerts
	hwid   []byte
	tcb    kds.TCBParts
}

// newFakeChain makes a Milan chain whose VCEK is issued for tcb and hwid.
func newFakeChain(t testing.TB, tcb kds.TCBParts, hwid []byte) *fakeChain {
	t.Helper()
	b := &sevtest.AmdSignerBuilder{
		Keys:             sevtest.DefaultAmdKeys(),
		ProductName:      "Milan-B0",
		ArkCreationTime:  fakeTime,
		AskCreationTime:  fakeTime,
		AsvkCreationTime: fakeTime,
		VcekCreationTime: fakeTime,
		VlekCreationTime: fakeTime,
		VcekCustom:       sevtest.CertOverride{Extensions: sevtest.CustomExtensions(tcb, hwid, "", "Milan-B0")},
	}
	s, err := b.TestOnlyCertChain()
	if err != nil {
		t.Fatal(err)
	}
	return &fakeChain{
		signer: s,
		roots: map[string][]*trust.AMDRootCerts{"Milan": {{
			ProductLine:  "Milan",
			ProductCerts: &trust.ProductCerts{Ark: s.Ark, Ask: s.Ask},
		}}},
		hwid: hwid,
		tcb:  tcb,
	}
}

// report returns a signed version 3 report; mut may change fields first.
func (f *fakeChain) report(t testing.TB, mut func(*spb.Report)) []byte {
	t.Helper()
	tcb, err := kds.ComposeTCBParts(f.tcb)
	if err != nil {
		t.Fatal(err)
	}
	rd := make([]byte, 64)
	copy(rd, "fake report data")
	p := &spb.Report{
		Version:         3,
		Policy:          1<<17 | 1<<16,
		FamilyId:        make([]byte, 16),
		ImageId:         make([]byte, 16),
		SignatureAlgo:   abi.SignEcdsaP384Sha384,
		ReportData:      rd,
		Measurement:     make([]byte, 48),
		HostData:        make([]byte, 32),
		IdKeyDigest:     make([]byte, 48),
		AuthorKeyDigest: make([]byte, 48),
		ReportId:        make([]byte, 32),
		ReportIdMa:      make([]byte, 32),
		ReportedTcb:     uint64(tcb),
		CurrentTcb:      uint64(tcb),
		CommittedTcb:    uint64(tcb),
		LaunchTcb:       uint64(tcb),
		Cpuid1EaxFms:    milanFMS,
		ChipId:          append([]byte(nil), f.hwid...),
		Signature:       make([]byte, 512),
	}
	for i := range p.Measurement {
		p.Measurement[i] = 0xa5
	}
	if mut != nil {
		mut(p)
	}
	raw, err := abi.ReportToAbiBytes(p)
	if err != nil {
		t.Fatal(err)
	}
	r, s, err := f.signer.Sign(abi.SignedComponent(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := abi.SetSignature(r, s, raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

func (f *fakeChain) evidence(report []byte) *attest.Evidence {
	return &attest.Evidence{
		Version: attest.EnvelopeVersion,
		TEE:     attest.SEVSNP,
		Report:  report,
		Certs:   [][]byte{f.signer.Vcek.Raw, f.signer.Ask.Raw},
	}
}

func (f *fakeChain) verifier() *Verifier { return NewVerifier(&Options{Roots: f.roots}) }

// chipID is a recognisable 64-byte CHIP_ID.
func chipID() []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}
