package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/wallet"
)

// entries records what the gateway audits.
type entries struct {
	mu sync.Mutex
	l  []audit.Entry
}

func (a *entries) Append(_ context.Context, e audit.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.l = append(a.l, e)
	return nil
}

func (a *entries) find(f func(audit.Entry) bool) []audit.Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Entry
	for _, e := range a.l {
		if f(e) {
			out = append(out, e)
		}
	}
	return out
}

// member is a person with a wallet and a device that signs statements.
type member struct {
	w *wallet.Keypair
	d *envelope.Device
}

func newMember(t *testing.T) member {
	t.Helper()
	w, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d, err := envelope.NewDevice(rand.Reader, w, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return member{w, d}
}

func (m member) addr() string { return m.w.Address().String() }

// statement has m's device sign a decision on approval id.
func (m member) statement(t *testing.T, id, argsHash string, d agentapi.Decision, expires time.Time) []byte {
	t.Helper()
	h, err := agentapi.ParseDigest(argsHash)
	if err != nil {
		t.Fatal(err)
	}
	st, err := agentapi.NewApprovalStatement(m.d, id, h, d, expires)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends body to the gateway's path with an optional bearer and
// returns the status and reason code.
func (h *harness) post(path, bearer string, body []byte) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.url+path, bytes.NewReader(body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e gatewayapi.ErrorBody
	json.Unmarshal(b, &e)
	return resp.StatusCode, e.Reason
}

func statementPath(id string) string { return gatewayapi.PathStatements + "/" + id + "/statement" }

// heldCall starts a call of up_write under token and returns the pending
// approval and the call's result channel.
func heldCall(t *testing.T, h *harness, token, text string) (map[string]any, <-chan *mcp.CallToolResult) {
	t.Helper()
	cs := h.mustConnect(token, nil)
	done := make(chan *mcp.CallToolResult, 1)
	go func() {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_write", Arguments: map[string]any{"text": text}})
		if err != nil {
			res = &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}
		}
		done <- res
	}()
	return waitApproval(t, h), done
}

// TestApprovalStatements: a call held under an agent's grant is decided
// only by a statement signed for the wallet the grant names: never by
// another member, never by the agent itself, never by a statement for
// another approval id or other arguments, an expired or forged one, or
// one used already; the admin API still decides as before; the audit
// names who approved under which grant.
func TestApprovalStatements(t *testing.T) {
	rec := &entries{}
	h := newHarness(t, hopts{timeout: 20 * time.Second, audit: rec})
	alice, bob, agent := newMember(t), newMember(t), newMember(t)
	parent := h.mint("alice", "up_*").Token
	grant, err := captoken.Attenuate(parent, captoken.Caveat{Tools: []string{"up_write", "up_echo"}, Approver: alice.addr(), Holder: agent.addr()})
	if err != nil {
		t.Fatal(err)
	}
	pg, _ := captoken.Parse(grant)

	a, done := heldCall(t, h, grant, "buy milk")
	id, hash := a["id"].(string), a["arguments_sha256"].(string)
	if a["approver"] != alice.addr() {
		t.Fatalf("pending approval names approver %v, want %s", a["approver"], alice.addr())
	}
	soon := h.now.Now().Add(time.Minute)
	otherID := strings.Repeat("ab", 16)
	otherHash := strings.Repeat("cd", 32)
	forged := alice.statement(t, id, hash, agentapi.Approve, soon)
	forged = bytes.Replace(forged, []byte(`"decision":"approve"`), []byte(`"decision":"deny"`), 1)
	for _, tc := range []struct {
		name   string
		path   string
		body   []byte
		status int
		reason string
	}{
		{"another member", statementPath(id), bob.statement(t, id, hash, agentapi.Approve, soon), 403, gatewayapi.ReasonNotApprover},
		{"the agent itself", statementPath(id), agent.statement(t, id, hash, agentapi.Approve, soon), 403, gatewayapi.ReasonNotApprover},
		{"replayed for another approval id", statementPath(id), alice.statement(t, otherID, hash, agentapi.Approve, soon), 400, gatewayapi.ReasonBadStatement},
		{"other arguments", statementPath(id), alice.statement(t, id, otherHash, agentapi.Approve, soon), 409, gatewayapi.ReasonArgumentsMismatch},
		{"expired", statementPath(id), alice.statement(t, id, hash, agentapi.Approve, h.now.Now().Add(-time.Second)), 403, gatewayapi.ReasonStatementExpired},
		{"expiring too far ahead", statementPath(id), alice.statement(t, id, hash, agentapi.Approve, h.now.Now().Add(time.Hour)), 403, gatewayapi.ReasonStatementExpired},
		{"tampered decision", statementPath(id), forged, 400, gatewayapi.ReasonBadStatement},
		{"unknown approval", statementPath(otherID), alice.statement(t, otherID, hash, agentapi.Approve, soon), 404, gatewayapi.ReasonNotPending},
		{"not JSON", statementPath(id), []byte("approve"), 400, gatewayapi.ReasonBadStatement},
	} {
		if status, reason := h.post(tc.path, "", tc.body); status != tc.status || reason != tc.reason {
			t.Errorf("%s: %d %q, want %d %q", tc.name, status, reason, tc.status, tc.reason)
		}
	}
	if len(pendingApprovals(h)) != 1 || len(h.up.called()) != 0 {
		t.Fatalf("a refused statement decided the call: pending %v, upstream saw %v", pendingApprovals(h), h.up.called())
	}
	ok := alice.statement(t, id, hash, agentapi.Approve, soon)
	if status, reason := h.post(statementPath(id), "", ok); status != 204 {
		t.Fatalf("alice's statement: %d %s", status, reason)
	}
	if res := <-done; res.IsError || callText(res) != "wrote buy milk" {
		t.Fatalf("approved call: %q", callText(res))
	}
	if status, reason := h.post(statementPath(id), "", ok); status != 404 || reason != gatewayapi.ReasonNotPending {
		t.Errorf("the statement used twice: %d %q, want 404 %q", status, reason, gatewayapi.ReasonNotPending)
	}
	// The audit names the approver's wallet and device and the grant, on
	// the statement's entry and on the call's decision entry.
	if got := rec.find(func(e audit.Entry) bool {
		return e.Type == "gateway.approval" && e.Decision == "approved" && e.Actor == "wallet:"+alice.addr() && e.TokenChain == pg.ChainID() &&
			strings.Contains(e.Reason, alice.d.Cert.Device) && e.Request == id
	}); len(got) != 1 {
		t.Errorf("no audit entry of alice's approval under the grant: %+v", rec.find(func(e audit.Entry) bool { return e.Type == "gateway.approval" }))
	}
	if got := rec.find(func(e audit.Entry) bool {
		return e.Type == "gateway.call" && e.Decision == "granted" && e.TokenChain == pg.ChainID() && strings.Contains(e.Reason, "approved by wallet "+alice.addr())
	}); len(got) != 1 {
		t.Errorf("the call's decision entry does not name alice as approver")
	}
	if got := rec.find(func(e audit.Entry) bool {
		return e.Type == "gateway.approval" && e.Decision == "denied" && e.Actor == "wallet:"+bob.addr()
	}); len(got) != 1 {
		t.Errorf("bob's refused statement is not audited")
	}

	t.Run("a denial", func(t *testing.T) {
		a, done := heldCall(t, h, grant, "sell milk")
		st := alice.statement(t, a["id"].(string), a["arguments_sha256"].(string), agentapi.Deny, soon)
		if status, reason := h.post(statementPath(a["id"].(string)), "", st); status != 204 {
			t.Fatalf("alice's denial: %d %s", status, reason)
		}
		if res := <-done; !res.IsError || !strings.Contains(callText(res), "denied by wallet "+alice.addr()) {
			t.Fatalf("denied call: %q", callText(res))
		}
		for _, c := range h.up.called() {
			if strings.Contains(c, "sell") {
				t.Fatalf("the upstream saw the denied call: %v", h.up.called())
			}
		}
	})
	t.Run("a token that names no approver: only the admin", func(t *testing.T) {
		a, done := heldCall(t, h, parent, "by admin")
		id := a["id"].(string)
		st := alice.statement(t, id, a["arguments_sha256"].(string), agentapi.Approve, soon)
		if status, reason := h.post(statementPath(id), "", st); status != 403 || reason != gatewayapi.ReasonNoApprover {
			t.Fatalf("statement for a call without approver: %d %q", status, reason)
		}
		if code := h.admin("POST", "/admin/v1/approvals/"+id+"/approve", nil, nil); code != 204 {
			t.Fatalf("admin approve: %d", code)
		}
		if res := <-done; res.IsError {
			t.Fatalf("admin-approved call: %q", callText(res))
		}
	})
}

// TestRevokeDerived: a token's holder revokes tokens derived from it
// without the admin (POST /v1/tokens/revoke): that token and what was
// derived from it stop at once (cached verifications too), the holder's
// own token and siblings keep working, and nobody revokes a token not
// derived from theirs. A grant is never wider than its parent.
func TestRevokeDerived(t *testing.T) {
	rec := &entries{}
	h := newHarness(t, hopts{audit: rec})
	parent := h.mint("alice", "up_echo").Token
	other := h.mint("mallory", "up_*").Token
	attenuate := func(tok string, c captoken.Caveat) string {
		t.Helper()
		out, err := captoken.Attenuate(tok, c)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	grant := attenuate(parent, captoken.Caveat{Tools: []string{"*"}, Holder: "agent", Approver: "alice"})
	sub := attenuate(grant, captoken.Caveat{Expires: time.Now().Add(time.Hour)})
	sibling := attenuate(parent, captoken.Caveat{Tools: []string{"up_echo"}})

	// Never wider: the grant asked for every tool, it gets its parent's.
	cs := h.mustConnect(grant, nil)
	if got := toolNames(t, cs); len(got) != 1 || got[0] != "up_echo" {
		t.Fatalf("grant lists %v, want only its parent's up_echo", got)
	}
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_write", Arguments: map[string]any{"text": "x"}}); err == nil {
		t.Fatal("the grant called a tool its parent does not allow")
	}
	h.mustConnect(sub, nil) // cached verification

	body := func(tok string) []byte { b, _ := json.Marshal(gatewayapi.RevokeDerivedRequest{Token: tok}); return b }
	for _, tc := range []struct {
		name, bearer, token string
		status              int
		reason              string
	}{
		{"a child revokes its parent", grant, parent, 403, gatewayapi.ReasonNotDerived},
		{"a sibling", sibling, grant, 403, gatewayapi.ReasonNotDerived},
		{"another root", other, grant, 403, gatewayapi.ReasonNotDerived},
		{"itself", grant, grant, 403, gatewayapi.ReasonNotDerived},
		{"no bearer", "", grant, 401, gatewayapi.ReasonUnauthorized},
		{"a forged token", parent, grant[:len(grant)-2] + "AA", 400, gatewayapi.ReasonBadRequest},
	} {
		if status, reason := h.post(gatewayapi.PathRevokeDerived, tc.bearer, body(tc.token)); status != tc.status || reason != tc.reason {
			t.Errorf("%s: %d %q, want %d %q", tc.name, status, reason, tc.status, tc.reason)
		}
	}
	if status, reason := h.post(gatewayapi.PathRevokeDerived, parent, body(grant)); status != 204 {
		t.Fatalf("the parent's holder revokes the grant: %d %q", status, reason)
	}
	for name, tok := range map[string]string{"grant": grant, "derived from the grant": sub} {
		if _, err := h.connect(tok, nil); err == nil {
			t.Errorf("%s still accepted after its revocation", name)
		}
	}
	for name, tok := range map[string]string{"parent": parent, "sibling": sibling} {
		if _, err := h.connect(tok, nil); err != nil {
			t.Errorf("%s refused after a derived token's revocation: %v", name, err)
		}
	}
	if status, _ := h.post(gatewayapi.PathRevokeDerived, parent, body(grant)); status != 204 {
		t.Errorf("revoking again: %d, want 204", status)
	}
	if got := rec.find(func(e audit.Entry) bool {
		return e.Type == "gateway.token.revoke" && strings.Contains(e.Reason, "held by agent")
	}); len(got) != 1 {
		t.Errorf("the revocation is not audited with its holder")
	}
}

// TestGrantHolderNeverSelfApproves: on an upstream whose operator let
// callers approve their own calls by elicitation
// (caller_elicitation_approves), a call under a grant that names an
// approver is still decided only by that approver: the holder's "approve"
// answer is ignored.
func TestGrantHolderNeverSelfApproves(t *testing.T) {
	h := newHarness(t, hopts{timeout: 20 * time.Second, upstream: optInUpstream})
	alice, agent := newMember(t), newMember(t)
	grant, err := captoken.Attenuate(h.mint("alice", "opt_*").Token, captoken.Caveat{Approver: alice.addr(), Holder: agent.addr()})
	if err != nil {
		t.Fatal(err)
	}
	self := newSelfApprover()
	cs := h.mustConnect(grant, self.options())
	done := make(chan *mcp.CallToolResult, 1)
	go func() {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "opt_write", Arguments: map[string]any{"text": "self"}})
		if err != nil {
			res = &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}
		}
		done <- res
	}()
	select {
	case <-self.answered:
	case <-time.After(20 * time.Second):
		t.Fatal("the gateway sent no elicitation")
	}
	a := waitApproval(t, h)
	if len(h.up.called()) != 0 {
		t.Fatalf("the holder approved its own call: upstream saw %v", h.up.called())
	}
	st := alice.statement(t, a["id"].(string), a["arguments_sha256"].(string), agentapi.Approve, h.now.Now().Add(time.Minute))
	if status, reason := h.post(statementPath(a["id"].(string)), "", st); status != 204 {
		t.Fatalf("alice's statement: %d %s", status, reason)
	}
	if res := <-done; res.IsError || callText(res) != "wrote self" {
		t.Fatalf("result %q", callText(res))
	}
}
