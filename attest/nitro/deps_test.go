package nitro_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDeviceCode keeps NSM device code out of the verifier's import graph:
// services that only verify must not link ioctl code.
func TestNoDeviceCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/chatmcp/chatmcp/attest/nitro").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/hf/nsm") || strings.HasSuffix(dep, "/attest/nitro/device") {
			t.Errorf("attest/nitro links %s", dep)
		}
	}
}
