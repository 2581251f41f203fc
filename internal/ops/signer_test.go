package ops

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSignerLabels: decisions and reasons outside the fixed words are
// folded into "other", so no caller-chosen string becomes a label.
func TestSignerLabels(t *testing.T) {
	reg := NewRegistry()
	s := NewSigner(reg, []string{"max_per_tx"})
	s.Decision(Granted, "")
	s.Decision(Denied, "max_per_tx")
	s.Decision(Denied, "secret-canary")
	s.Decision("made-up", "")
	var nilSigner *Signer
	nilSigner.Decision(Granted, "")
	want := `
# HELP chatmcp_signer_decisions_total Signing decisions, by the policy rule that refused.
# TYPE chatmcp_signer_decisions_total counter
chatmcp_signer_decisions_total{decision="denied",reason="max_per_tx"} 1
chatmcp_signer_decisions_total{decision="denied",reason="other"} 1
chatmcp_signer_decisions_total{decision="granted",reason=""} 1
chatmcp_signer_decisions_total{decision="other",reason=""} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "chatmcp_signer_decisions_total"); err != nil {
		t.Fatal(err)
	}
}
