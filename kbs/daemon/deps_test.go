package daemon

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the KBS's trusted computing base honest: the
// chatmcp-kbs binary links no gateway, relay or chat code (DESIGN.md).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/chatmcp/chatmcp/cmd/chatmcp-kbs").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{"/gateway", "/relay", "/chat", "/captoken", "/wallet", "/cmd/chatmcp/cli"}
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.HasPrefix(pkg, "github.com/chatmcp/chatmcp/") {
			continue
		}
		rest := strings.TrimPrefix(pkg, "github.com/chatmcp/chatmcp")
		for _, f := range forbidden {
			if rest == f || strings.HasPrefix(rest, f+"/") {
				t.Errorf("chatmcp-kbs links %s", pkg)
			}
		}
	}
}
