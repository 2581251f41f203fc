package agenttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// AuditEntries returns the entries of type typ in the gateway's audit log
// (audit.jsonl under gatewayData), each as decoded JSON; a sealed record's
// inner entry is returned in its place. Lines that are not JSON are skipped.
func AuditEntries(t testing.TB, gatewayData, typ string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(gatewayData, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if ent, ok := rec["entry"].(map[string]any); ok {
			rec = ent
		}
		if rec["type"] == typ {
			out = append(out, rec)
		}
	}
	return out
}
