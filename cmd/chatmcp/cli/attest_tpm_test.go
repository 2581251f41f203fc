package cli

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm-tools/simulator"

	"github.com/chatmcp/chatmcp/attest"
	tpmdevice "github.com/chatmcp/chatmcp/attest/tpm/device"
)

// noCloseTPM keeps the simulator open across the attester's per-call Close.
type noCloseTPM struct{ io.ReadWriter }

func (noCloseTPM) Close() error { return nil }

// TestAttestVerifyTPM quotes on the go-tpm-tools simulator (a software TPM:
// insecure, for tests) and verifies the evidence through the CLI, which
// trusts the quote only when --tpm-ak names the attestation key.
func TestAttestVerifyTPM(t *testing.T) {
	sim, err := simulator.Get()
	if err != nil {
		t.Fatalf("starting the TPM simulator: %v", err)
	}
	defer sim.Close()
	a := tpmdevice.NewAttester(&tpmdevice.Options{Open: func() (io.ReadWriteCloser, error) { return noCloseTPM{sim}, nil }})
	ctx := context.Background()
	var rd [attest.ReportDataSize]byte
	copy(rd[:], "tpm via the cli")
	ev, err := a.Attest(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	akPub, err := a.AKPublic(ctx)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(akPub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	evJSON, _ := json.Marshal(ev)
	evFile := write("ev.json", evJSON)
	akFile := write("ak.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	policy := write("policy.yaml", []byte("allow: [tpm]\n"))
	notKey := write("not-a-key.pem", []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"))

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"trusted AK", []string{"--tpm-ak", akFile, "--report-data", hex.EncodeToString(rd[:])}, ExitOK, ""},
		{"no AK trusted", nil, ExitInvalid, "certificate: AK not trusted"},
		{"wrong report data", []string{"--tpm-ak", akFile, "--report-data", "00"}, ExitRejected, "report data"},
		{"AK file is not a public key", []string{"--tpm-ak", notKey}, ExitUsage, "no PUBLIC KEY block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"attest", "verify", "--policy", policy, evFile}, tt.args...)
			code, out, errs := runCLI(t, nil, args...)
			if code != tt.wantCode || !strings.Contains(errs, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errs, tt.wantCode, tt.wantErr)
			}
			if code == ExitOK && !strings.Contains(out, `"tee": "tpm"`) {
				t.Fatalf("claims = %s", out)
			}
		})
	}
}
