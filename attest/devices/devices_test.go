package devices

import (
	"errors"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/attest"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		tee     attest.TEE
		present []string
		want    attest.TEE
		wantErr string
	}{
		{"nothing present", "", nil, "", "no TEE device found"},
		{"SEV-SNP", "", []string{"/dev/sev-guest"}, attest.SEVSNP, ""},
		{"TDX", "", []string{"/dev/tdx_guest"}, attest.TDX, ""},
		{"Nitro", "", []string{"/dev/nsm"}, attest.Nitro, ""},
		{"TPM alone", "", []string{"/dev/tpmrm0"}, attest.TPM, ""},
		{"CPU TEE preferred over its vTPM", "", []string{"/dev/tpmrm0", "/dev/sev-guest"}, attest.SEVSNP, ""},
		{"named TEE wins", attest.TPM, []string{"/dev/sev-guest"}, attest.TPM, ""},
		{"sim is never a device", attest.Sim, nil, "", "--dev"},
		{"unknown name", "sgx", nil, "", `unknown TEE type "sgx"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exists := func(p string) bool {
				for _, q := range tt.present {
					if p == q {
						return true
					}
				}
				return false
			}
			a, err := Detect(&Options{TEE: tt.tee, Exists: exists})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Detect error = %v, want containing %q", err, tt.wantErr)
				}
				if tt.tee == "" && !errors.Is(err, ErrNoDevice) {
					t.Fatalf("Detect error = %v, want ErrNoDevice", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if a.TEE() != tt.want {
				t.Fatalf("Detect = %s attester, want %s", a.TEE(), tt.want)
			}
		})
	}
}
