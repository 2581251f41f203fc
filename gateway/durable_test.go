package gateway_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/audit"
)

// stagedAudit is a StagedLog whose entries are written at once and whose
// fsync of a decision entry fails when failSync is set: the case of an
// upstream that answered while the disk refused the decision record.
type stagedAudit struct {
	mu       sync.Mutex
	entries  []audit.Entry
	failSync bool
}

func (a *stagedAudit) Append(_ context.Context, e audit.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
	return nil
}

func (a *stagedAudit) Stage(_ context.Context, e audit.Entry) (func() error, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
	fail := a.failSync
	return func() error {
		if fail {
			return errors.New("fsync: input/output error")
		}
		return nil
	}, nil
}

// TestDecisionNotDurableWithholdsResult: the decision entry's fsync runs
// while the upstream works; when it fails, the upstream's answer (here one
// carrying the layer-1 secret, redacted or not) never reaches the client,
// which gets the audit error instead.
func TestDecisionNotDurableWithholdsResult(t *testing.T) {
	for _, fail := range []bool{false, true} {
		sa := &stagedAudit{failSync: fail}
		h := newHarness(t, hopts{audit: sa})
		cs := h.mustConnect(h.mint("alice", "*").Token, nil)
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_echo", Arguments: map[string]any{"text": "hello"}})
		if !fail {
			if err != nil || !strings.Contains(callText(res), "echo: hello") {
				t.Fatalf("durable decision: res %v, err %v", res, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "result is withheld") {
			t.Fatalf("decision not durable: res %v, err %v; want the result withheld", res, err)
		}
		if got := h.up.called(); len(got) != 1 {
			t.Fatalf("upstream calls %v: the call is forwarded while its entry syncs", got)
		}
		sa.mu.Lock()
		var granted bool
		for _, e := range sa.entries {
			granted = granted || (e.Type == "gateway.call" && e.Decision == "granted")
		}
		sa.mu.Unlock()
		if !granted {
			t.Fatal("no decision entry was staged before forwarding")
		}
	}
}
