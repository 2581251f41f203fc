package tpm_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDeviceCode keeps TPM device code (go-tpm-tools, its simulator, this
// project's attester) and protobuf out of the verifier's import graph. go-tpm
// itself is linked for its structure codecs (and, through tpm2/transport, its
// legacy command package, which opens no device by itself).
func TestNoDeviceCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/chatmcp/chatmcp/attest/tpm").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/google/go-tpm-tools", "google.golang.org/protobuf", "github.com/chatmcp/chatmcp/attest/tpm/device"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("attest/tpm links %s", dep)
			}
		}
	}
}
