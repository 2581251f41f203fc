package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/gateway"
)

// auditEntries reads the gateway's audit log (verifying its chain) and
// returns its entries as maps.
func auditEntries(t *testing.T, h *harness) []map[string]any {
	t.Helper()
	b, err := readFile(h.gw.DataDir() + "/audit.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, audit.MaxLineSize+1)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// waitAuditEntry polls the audit log until an entry matches.
func waitAuditEntry(t *testing.T, h *harness, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range auditEntries(t, h) {
			if match(e) {
				return e
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no matching audit entry appeared")
	return nil
}

// TestAbandonedCallIsAudited replays issue 8 #4: a client that gives up
// while its call waits for approval cancels the request's context; the
// refusal must still be in the audit log.
func TestAbandonedCallIsAudited(t *testing.T) {
	h := newHarness(t, hopts{timeout: 30 * time.Second})
	cs := h.mustConnect(h.mint("alice", "up_write").Token, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_write", Arguments: map[string]any{"text": "x"}})
		done <- err
	}()
	a := waitApproval(t, h)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the abandoned call returned no error")
	}
	e := waitAuditEntry(t, h, func(e map[string]any) bool {
		return e["type"] == "gateway.call" && e["request"] == a["id"]
	})
	if e["decision"] != "denied" || e["reason"] != "approval cancelled" || e["principal"] != "alice" {
		t.Fatalf("entry %v, want denied: approval cancelled", e)
	}
	if got := h.up.called(); len(got) != 0 {
		t.Fatalf("upstream saw %v", got)
	}
	h.gw.Close()
	b, _ := readFile(h.gw.DataDir() + "/audit.jsonl")
	if err := audit.Verify(bytes.NewReader(b), nil); err != nil {
		t.Fatalf("audit log does not verify: %v", err)
	}
}

// TestRefusedRequestsAreAudited: requests refused at the HTTP edge for
// their token leave an entry naming the failed check.
func TestRefusedRequestsAreAudited(t *testing.T) {
	h := newHarness(t, hopts{})
	revoked := h.mint("carol", "*")
	if code := h.admin("POST", "/admin/v1/tokens/"+revoked.ID+"/revoke", nil, nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	expiring := h.mint("dave", "*")
	send := func(header string) {
		req, _ := http.NewRequest("POST", h.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	}
	send("")
	send("Bearer cmt1.garbage")
	send("Bearer " + revoked.Token)
	h.now.Advance(2 * time.Hour)
	send("Bearer " + expiring.Token)
	h.gw.Close()
	got := map[string]bool{}
	for _, e := range auditEntries(t, h) {
		if e["type"] == "gateway.request" && e["decision"] == "denied" && e["action"] == "POST /mcp" && e["actor"] == "127.0.0.1" {
			got[e["reason"].(string)] = true
		}
	}
	for _, want := range []string{"missing bearer token", "malformed token", "token revoked", "token expired"} {
		if !got[want] {
			t.Errorf("no audit entry for a request refused with %q (have %v)", want, got)
		}
	}
}

// TestRefusalFloodIsAggregated: past RefusalBurst refusals for one reason
// (at one instant, so the bucket does not refill), further ones are
// counted in one "gateway.refusals.suppressed" entry, written at the
// latest when the gateway closes.
func TestRefusalFloodIsAggregated(t *testing.T) {
	h := newHarness(t, hopts{})
	const flood = gateway.RefusalBurst + 15
	for range flood {
		resp, err := h.client.Post(h.url+"/mcp", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	h.gw.Close()
	single, suppressed := 0, 0.0
	for _, e := range auditEntries(t, h) {
		if e["reason"] != "missing bearer token" {
			continue
		}
		switch e["type"] {
		case "gateway.request":
			single++
		case "gateway.refusals.suppressed":
			suppressed += e["count"].(float64)
		}
	}
	if single != gateway.RefusalBurst || int(suppressed) != flood-gateway.RefusalBurst {
		t.Fatalf("%d single entries and %v suppressed, want %d and %d", single, suppressed, gateway.RefusalBurst, flood-gateway.RefusalBurst)
	}
}

// TestUnknownAndUnpermittedToolsAnswerAlike replays issue 8 #8: a token
// holder must not tell a tool it may not use from one that does not exist.
// The audit log keeps the difference.
func TestUnknownAndUnpermittedToolsAnswerAlike(t *testing.T) {
	h := newHarness(t, hopts{})
	cs := h.mustConnect(h.mint("mallory", "up_echo").Token, nil)
	answer := func(name string) (int64, string) {
		_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: map[string]any{"text": "x"}})
		var je *jsonrpc.Error
		if !errors.As(err, &je) {
			t.Fatalf("%s: err = %v, want a JSON-RPC error", name, err)
		}
		return je.Code, strings.ReplaceAll(je.Message, name, "NAME")
	}
	pc, pm := answer("up_write")   // exists, not permitted
	uc, um := answer("up_nothere") // does not exist
	if pc != uc || pm != um {
		t.Fatalf("not permitted: %d %q; unknown: %d %q; want the same answer", pc, pm, uc, um)
	}
	if !strings.Contains(pm, "unknown tool") || !strings.Contains(pm, "not permitted by your token") {
		t.Fatalf("answer %q does not say what failed", pm)
	}
	h.gw.Close()
	reasons := map[string]string{}
	for _, e := range auditEntries(t, h) {
		if e["type"] == "gateway.call" {
			reasons[e["tool"].(string)], _ = e["reason"].(string)
		}
	}
	if reasons["up_write"] != "not permitted by token" || reasons["up_nothere"] != "unknown tool" {
		t.Fatalf("audit reasons %v", reasons)
	}
	if got := h.up.called(); len(got) != 0 {
		t.Fatalf("upstream saw %v", got)
	}
}
