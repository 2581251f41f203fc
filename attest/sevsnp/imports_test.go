package sevsnp

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDeviceImports keeps device access out of the verifier: its
// dependencies must not include a guest-device client or configfs-tsm.
func TestNoDeviceImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go tool to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasSuffix(dep, "/client") || strings.Contains(dep, "/client/") ||
			strings.Contains(dep, "go-configfs-tsm") || strings.HasSuffix(dep, "/device") {
			t.Errorf("verifier depends on device code: %s", dep)
		}
	}
}
