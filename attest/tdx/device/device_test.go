package device

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/tdx"
	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	tdxtest "github.com/google/go-tdx-guest/testing"
	"github.com/google/go-tdx-guest/testing/testdata"
)

// sampleTime is when go-tdx-guest's sample quote's chain is valid.
var sampleTime = time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)

// sample is go-tdx-guest's sample quote, without its non-zero test-only
// trailing bytes and zero-padded as a quote buffer would be, and the report
// data it binds. (Real quotes cannot be made here: the quoting enclave's
// signature is Intel's.)
func sample(t *testing.T) ([]byte, [64]byte) {
	t.Helper()
	b := testdata.RawQuote
	end := 636 + int(binary.LittleEndian.Uint32(b[632:636]))
	q := append(bytes.Clone(b[:end]), make([]byte, 64)...)
	var rd [64]byte
	copy(rd[:], b[48+520:48+584])
	return q, rd
}

func fakeTSM(provider string, quote []byte) *faketsm.Client {
	sub := faketsm.ReportV7(0)
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(provider), nil
		case "outblob":
			if len(e.InAttrs["inblob"].Value) == 0 {
				return nil, syscall.EINVAL
			}
			return quote, nil
		}
		return nil, syscall.ENOENT
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}

func fakeDevice(t *testing.T, rd [64]byte, quote []byte) *tdxtest.Device {
	t.Helper()
	var report [1024]byte
	copy(report[:], testdata.RawReport)
	d, err := tdxtest.TcDevice([]tdxtest.TestCase{{Input: rd, Report: report, Quote: quote}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Open(""); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAttestVerifies(t *testing.T) {
	quote, rd := sample(t)
	tests := []struct {
		name string
		opts *Options
	}{
		{name: "configfs-tsm", opts: &Options{TSM: fakeTSM("tdx_guest\n", quote)}},
		{name: "/dev/tdx_guest", opts: &Options{Device: fakeDevice(t, rd, quote)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := New(tc.opts).Attest(context.Background(), rd)
			if err != nil {
				t.Fatalf("Attest: %v", err)
			}
			if ev.TEE != attest.TDX || len(ev.Report) != len(quote)-64 {
				t.Fatalf("evidence %v, want the quote without its padding", ev)
			}
			c, err := tdx.NewVerifier(nil).Verify(context.Background(), ev, &attest.VerifyOptions{Now: sampleTime})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !bytes.Equal(c.ReportData, rd[:]) {
				t.Errorf("report data %x", []byte(c.ReportData))
			}
		})
	}
}

func TestAttestErrors(t *testing.T) {
	quote, rd := sample(t)
	var otherRD [64]byte
	tests := []struct {
		name string
		opts *Options
		rd   [64]byte
		want string
	}{
		{name: "not a TDX provider", opts: &Options{TSM: fakeTSM("sev_guest\n", quote)}, rd: rd, want: "not tdx_guest"},
		{name: "quote for other data", opts: &Options{TSM: fakeTSM("tdx_guest\n", quote)}, rd: otherRD, want: "other report data"},
		{name: "bad quote", opts: &Options{TSM: fakeTSM("tdx_guest\n", quote[:100])}, rd: rd, want: "bad quote"},
		{name: "device has no answer", opts: &Options{Device: fakeDevice(t, rd, quote)}, rd: otherRD, want: "/dev/tdx_guest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts).Attest(context.Background(), tc.rd)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New(&Options{TSM: fakeTSM("tdx_guest\n", quote)}).Attest(ctx, rd); err == nil {
		t.Fatal("Attest with a cancelled context succeeded")
	}
}
