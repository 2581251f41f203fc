package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the gateway's trusted computing base honest: the
// chatmcp-gateway binary links no relay, chat or CLI code (DESIGN.md). It
// may link wallet and envelope: it verifies approval statements signed by a
// wallet's device. internal/tcb holds the full list of what it links.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/chatmcp/chatmcp/cmd/chatmcp-gateway").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{"/relay", "/chat", "/cmd/chatmcp/cli", "/gwclient", "/mcpbridge"}
	n := 0
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.HasPrefix(pkg, "github.com/chatmcp/chatmcp/") {
			continue
		}
		n++
		rest := strings.TrimPrefix(pkg, "github.com/chatmcp/chatmcp")
		for _, f := range forbidden {
			if rest == f || strings.HasPrefix(rest, f+"/") {
				t.Errorf("chatmcp-gateway links %s", pkg)
			}
		}
	}
	if n == 0 {
		t.Fatal("go list named no chatmcp packages")
	}
}
