package device

import (
	"context"
	"encoding/hex"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sevsnp"
	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-sev-guest/abi"
	sevtest "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/trust"
)

var chainTime = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

const milanFMS = 0x00a00f10

func signer(t *testing.T) *sevtest.AmdSigner {
	t.Helper()
	s, err := sevtest.DefaultTestOnlyCertChain("Milan-B0", chainTime)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signedReport is a version 3 Milan report for rd, signed by s's VCEK.
func signedReport(t *testing.T, s *sevtest.AmdSigner, rd []byte) []byte {
	t.Helper()
	buf := sevtest.CreateRawReport(&sevtest.TestReportOptions{ReportData: rd, FMS: milanFMS, Version: 3})
	raw := buf[:abi.ReportSize]
	r, ss, err := s.Sign(abi.SignedComponent(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := abi.SetSignature(r, ss, raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

// fakeTSM is a configfs-tsm whose outblob is a report signed for the
// written inblob, with the signer's certificate table as auxblob.
func fakeTSM(t *testing.T, s *sevtest.AmdSigner, provider string, mangle func([]byte) []byte) *faketsm.Client {
	t.Helper()
	table, err := s.CertTableBytes()
	if err != nil {
		t.Fatal(err)
	}
	sub := faketsm.ReportV7(0)
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(provider), nil
		case "auxblob":
			return table, nil
		case "outblob":
			in := e.InAttrs["inblob"].Value
			if len(in) == 0 {
				return nil, syscall.EINVAL
			}
			out := signedReport(t, s, in)
			if mangle != nil {
				out = mangle(out)
			}
			return out, nil
		}
		return nil, syscall.ENOENT
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}

// verifier trusts s's generated roots.
func verifier(s *sevtest.AmdSigner) *sevsnp.Verifier {
	return sevsnp.NewVerifier(&sevsnp.Options{Roots: map[string][]*trust.AMDRootCerts{"Milan": {{
		ProductLine:  "Milan",
		ProductCerts: &trust.ProductCerts{Ark: s.Ark, Ask: s.Ask},
	}}}})
}

func reportData() [64]byte {
	var rd [64]byte
	copy(rd[:], "chatmcp device test")
	return rd
}

// sevGuest is a fake /dev/sev-guest answering for rd.
func sevGuest(t *testing.T, s *sevtest.AmdSigner, rd [64]byte, fwErr abi.SevFirmwareStatus) *sevtest.Device {
	t.Helper()
	table, err := s.CertTableBytes()
	if err != nil {
		t.Fatal(err)
	}
	resp := &sevtest.GetReportResponse{FwErr: fwErr}
	buf := sevtest.CreateRawReport(&sevtest.TestReportOptions{ReportData: rd[:], FMS: milanFMS, Version: 3})
	copy(resp.Resp.Data[:], buf[:])
	return &sevtest.Device{
		ReportDataRsp: map[string]any{hex.EncodeToString(rd[:]): resp},
		Certs:         table,
		Signer:        s,
		SevProduct:    abi.DefaultSevProduct(),
	}
}

func TestAttestVerifies(t *testing.T) {
	s := signer(t)
	rd := reportData()
	d := sevGuest(t, s, rd, 0)
	if err := d.Open(""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts *Options
	}{
		{name: "configfs-tsm", opts: &Options{TSM: fakeTSM(t, s, "sev_guest\n", nil)}},
		{name: "/dev/sev-guest", opts: &Options{Device: d}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := New(tc.opts).Attest(context.Background(), rd)
			if err != nil {
				t.Fatalf("Attest: %v", err)
			}
			if ev.TEE != attest.SEVSNP || len(ev.Report) != sevsnp.ReportSize || len(ev.Certs) != 3 {
				t.Fatalf("evidence %v", ev)
			}
			c, err := verifier(s).Verify(context.Background(), ev, &attest.VerifyOptions{Now: chainTime.Add(time.Hour)})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if string(c.ReportData) != string(rd[:]) {
				t.Errorf("report data %x", []byte(c.ReportData))
			}
		})
	}
}

func TestAttestErrors(t *testing.T) {
	s := signer(t)
	rd := reportData()
	other := func(b []byte) []byte { b[0x50] ^= 1; return b }
	short := func(b []byte) []byte { return b[:100] }
	failing := sevGuest(t, s, rd, abi.InvalidParam)
	if err := failing.Open(""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts *Options
		want string
	}{
		{name: "not an SEV guest provider", opts: &Options{TSM: fakeTSM(t, s, "tdx_guest\n", nil)}, want: "not sev_guest"},
		{name: "report for other data", opts: &Options{TSM: fakeTSM(t, s, "sev_guest\n", other)}, want: "other report data"},
		{name: "short report", opts: &Options{TSM: fakeTSM(t, s, "sev_guest\n", short)}, want: "bad report"},
		{name: "VMPL below the floor", opts: &Options{TSM: func() *faketsm.Client {
			c := fakeTSM(t, s, "sev_guest\n", nil)
			c.Subsystems["report"].(*faketsm.ReportSubsystem).CheckInAttr = func(e *faketsm.ReportEntry, attr string, _ []byte) error {
				if attr == "privlevel" {
					return syscall.EINVAL
				}
				return nil
			}
			return c
		}(), VMPL: new(uint)}, want: "configfs-tsm"},
		{name: "firmware error", opts: &Options{Device: failing}, want: "extended report"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts).Attest(context.Background(), rd)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New(&Options{TSM: fakeTSM(t, s, "sev_guest\n", nil)}).Attest(ctx, rd); err == nil {
		t.Fatal("Attest with a cancelled context succeeded")
	}
}

func TestCertsFromTable(t *testing.T) {
	if certs, err := certsFromTable(nil); err != nil || certs != nil {
		t.Fatalf("empty table: %v, %v", certs, err)
	}
	if _, err := certsFromTable([]byte("garbage certificate table that is long enough")); err == nil {
		t.Fatal("garbage table accepted")
	}
}
