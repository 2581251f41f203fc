package device_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/tpm"
	"github.com/chatmcp/chatmcp/attest/tpm/device"
	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpmutil"
)

// noClose keeps the simulator alive across the Attester's per-call Close.
type noClose struct{ io.ReadWriter }

func (noClose) Close() error { return nil }

// simAttester returns an Attester over a fresh TPM simulator (insecure: a
// software TPM whose keys anyone on this machine can read).
func simAttester(t *testing.T, pcrs []int) (*device.Attester, *simulator.Simulator) {
	t.Helper()
	sim, err := simulator.Get()
	if err != nil {
		t.Fatalf("starting the TPM simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	return device.NewAttester(&device.Options{
		Open: func() (io.ReadWriteCloser, error) { return noClose{sim}, nil },
		PCRs: pcrs,
	}), sim
}

func TestSimulatorEndToEnd(t *testing.T) {
	ctx := context.Background()
	a, sim := simAttester(t, nil)
	// Extend PCR 7 so the quoted bank is not all zero.
	if err := tpm2.PCRExtend(sim, tpmutilHandle(7), tpm2.AlgSHA256, bytes.Repeat([]byte{1}, 32), ""); err != nil {
		t.Fatal(err)
	}
	akPub, err := a.AKPublic(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := akPub.(*ecdsa.PublicKey); !ok {
		t.Fatalf("AK is %T, want ECDSA", akPub)
	}
	rd, err := attest.BindReportData(attest.TagNonce, []byte("end to end"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ev.TEE != attest.TPM || a.TEE() != attest.TPM {
		t.Fatalf("TEE %s", ev.TEE)
	}
	v := tpm.NewVerifier(&tpm.Options{TrustedAKs: []crypto.PublicKey{akPub}})
	c, err := v.Verify(ctx, ev, nil)
	if err != nil {
		t.Fatalf("simulator evidence rejected: %v", err)
	}
	if !bytes.Equal(c.ReportData, rd[:]) {
		t.Errorf("report data %x, want %x", []byte(c.ReportData), rd)
	}
	if len(c.PCRs) != 8 || len(c.Measurement) != 32 {
		t.Errorf("%d PCRs, measurement %d bytes; want 8 and 32", len(c.PCRs), len(c.Measurement))
	}
	// PCR 7 after one extend: SHA-256(zeros || ones).
	want := sha256.Sum256(append(make([]byte, 32), bytes.Repeat([]byte{1}, 32)...))
	if !bytes.Equal(c.PCRs[7], want[:]) {
		t.Errorf("PCR7 %x, want %x", []byte(c.PCRs[7]), want)
	}

	// The same evidence through the Checker with policies.
	checker := attest.NewChecker(v)
	pol := func(y string) *attest.Policy {
		p, err := attest.ParsePolicy([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "allow: [tpm]\ntpm:\n  measurement: [" + c.Measurement.String() + "]\n  pcrs: {7: " + c.PCRs[7].String() + "}\n"
	tests := []struct {
		name   string
		policy string
		rd     []byte
		want   attest.Check
	}{
		{"accepted", good, rd[:], ""},
		{"wrong report data", good, []byte("other"), attest.CheckReportData},
		{"measurement mismatch", "allow: [tpm]\ntpm:\n  measurement: [" + strings.Repeat("00", 32) + "]\n", nil, attest.CheckMeasurement},
		{"pcr mismatch", "allow: [tpm]\ntpm:\n  pcrs: {7: " + strings.Repeat("00", 32) + "}\n", nil, attest.CheckMeasurement},
		{"pcr not quoted", "allow: [tpm]\ntpm:\n  pcrs: {10: " + strings.Repeat("00", 32) + "}\n", nil, attest.CheckMeasurement},
		{"not allowed", "allow: [nitro]\n", nil, attest.CheckNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checker.Check(ctx, ev, pol(tt.policy), &attest.CheckOptions{ReportData: tt.rd})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got, _ := attest.CheckOf(err); got != tt.want {
				t.Fatalf("error %v, want check %q", err, tt.want)
			}
		})
	}

	// Tampering with any part is rejected.
	parsed, err := tpm.Parse(ev.Report)
	if err != nil {
		t.Fatal(err)
	}
	reencode := func(mut func(*tpm.Attestation)) *attest.Evidence {
		cp := *parsed.Raw
		cp.PCRs = map[int][]byte{}
		for i, v := range parsed.Raw.PCRs {
			cp.PCRs[i] = bytes.Clone(v)
		}
		cp.Quote = bytes.Clone(cp.Quote)
		cp.Signature = bytes.Clone(cp.Signature)
		mut(&cp)
		b, err := cp.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.TPM, Report: b}
	}
	// The simulator is a process-wide singleton, so another AK is a
	// generated key.
	otherAK, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tamper := []struct {
		name string
		ev   *attest.Evidence
		v    *tpm.Verifier
		want attest.Check
	}{
		{"quote byte flipped", reencode(func(a *tpm.Attestation) { a.Quote[len(a.Quote)-1] ^= 1 }), v, attest.CheckSignature},
		{"signature byte flipped", reencode(func(a *tpm.Attestation) { a.Signature[len(a.Signature)-1] ^= 1 }), v, attest.CheckSignature},
		{"pcr value changed", reencode(func(a *tpm.Attestation) { a.PCRs[7][0] ^= 1 }), v, attest.CheckSignature},
		{"untrusted AK", ev, tpm.NewVerifier(&tpm.Options{TrustedAKs: []crypto.PublicKey{otherAK.Public()}}), attest.CheckCertificate},
		{"no trust configured", ev, tpm.NewVerifier(nil), attest.CheckCertificate},
	}
	for _, tt := range tamper {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.v.Verify(ctx, tt.ev, nil)
			if got, _ := attest.CheckOf(err); got != tt.want {
				t.Fatalf("error %v, want check %q", err, tt.want)
			}
		})
	}
}

func tpmutilHandle(pcr int) tpmutil.Handle { return tpmutil.Handle(pcr) }

func TestAttesterErrors(t *testing.T) {
	ctx := context.Background()
	openErr := errors.New("no TPM here")
	a := device.NewAttester(&device.Options{Open: func() (io.ReadWriteCloser, error) { return nil, openErr }})
	if _, err := a.Attest(ctx, [attest.ReportDataSize]byte{}); !errors.Is(err, openErr) {
		t.Errorf("Attest error %v, want the open error", err)
	}
	if _, err := a.AKPublic(ctx); !errors.Is(err, openErr) {
		t.Errorf("AKPublic error %v, want the open error", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Attest(cancelled, [attest.ReportDataSize]byte{}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	// The simulator has no GCE AK template in NV storage.
	_, sim := simAttester(t, nil)
	gce := device.NewAttester(&device.Options{Open: func() (io.ReadWriteCloser, error) { return noClose{sim}, nil }, GCE: true})
	if _, err := gce.Attest(ctx, [attest.ReportDataSize]byte{}); err == nil || !strings.Contains(err.Error(), "loading the attestation key") {
		t.Errorf("GCE AK on the simulator: error %v, want a loading error", err)
	}
	sa := device.NewAttester(&device.Options{Open: func() (io.ReadWriteCloser, error) { return noClose{sim}, nil }, PCRs: []int{30}})
	if _, err := sa.Attest(ctx, [attest.ReportDataSize]byte{}); err == nil || !strings.Contains(err.Error(), "quoting PCRs") {
		t.Errorf("quoting PCR 30: error %v, want a quoting error", err)
	}
}
