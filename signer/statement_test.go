package signer_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/signer"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
)

func device(t *testing.T) (*envelope.Device, string) {
	t.Helper()
	kp, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d, err := envelope.NewDevice(rand.Reader, kp, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return d, kp.Address().String()
}

// TestStatementApproval: an agent's grant names its inviter as approver;
// a request above approve_above waits, the agent lists it with its own
// token, and only a statement signed by a device of the approver's
// wallet, naming the held message's digest, decides it, once. Each
// refused statement names its check and leaves the request pending.
func TestStatementApproval(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storetest.SQLite(t), "", time.Minute)
	f.s.Policy().MaxPerTx = 3000000
	f.s.Policy().Window.Max = 1 << 40
	srv := httptest.NewServer(signer.Handler(&signer.ServerOptions{Signer: f.s, TokenKey: f.tokKey, Audience: "signer", AdminToken: "0123456789abcdef0123456789abcdef"}))
	t.Cleanup(srv.Close)
	approverDev, approver := device(t)
	agentDev, agentWallet := device(t)
	strangerDev, _ := device(t)
	raw, err := captoken.Attenuate(f.tokenString(t, "agent", ""), captoken.Caveat{Approver: approver, Holder: agentWallet})
	if err != nil {
		t.Fatal(err)
	}
	agent := &signerclient.Client{BaseURL: srv.URL, Token: raw}

	type result struct {
		r   *signerapi.SignResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := agent.SignTransaction(ctx, f.pay(t, 2500000))
		done <- result{r, err}
	}()
	waitHold := func() signerapi.Approval {
		select {
		case a := <-f.holds:
			return a
		case r := <-done:
			t.Fatalf("the request was not held: %+v, %v", r.r, r.err)
		}
		return signerapi.Approval{}
	}
	waitHold()
	own, err := agent.Approvals(ctx)
	if err != nil || len(own) != 1 || own[0].Approver != approver || own[0].MessageSHA256 == "" {
		t.Fatalf("the agent's own approvals: %+v, %v", own, err)
	}
	a := own[0]
	digest, err := agentapi.ParseDigest(a.MessageSHA256)
	if err != nil {
		t.Fatal(err)
	}
	statement := func(d *envelope.Device, id string, sum agentapi.Digest, dec agentapi.Decision, exp time.Time) json.RawMessage {
		st, err := agentapi.NewApprovalStatement(d, id, sum, dec, exp)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(st)
		return b
	}
	soon := time.Now().Add(time.Minute)
	other := agentapi.Digest{1}
	// The held request's arguments as a conversation shows them, with
	// another amount: what a lying holder would show its approver.
	lie := a
	lie.Amount = 25
	lieSum := agentapi.Sum(lie.Arguments())
	for _, tc := range []struct {
		name, reason string
		body         json.RawMessage
		id           string
	}{
		{"another wallet", signerapi.ReasonNotApprover, statement(strangerDev, a.ID, digest, agentapi.Approve, soon), a.ID},
		{"the holder itself", signerapi.ReasonNotApprover, statement(agentDev, a.ID, digest, agentapi.Approve, soon), a.ID},
		{"another message", signerapi.ReasonArgumentsMismatch, statement(approverDev, a.ID, other, agentapi.Approve, soon), a.ID},
		{"arguments of another amount", signerapi.ReasonArgumentsMismatch, statement(approverDev, a.ID, lieSum, agentapi.Approve, soon), a.ID},
		{"another approval id", signerapi.ReasonBadStatement, statement(approverDev, "00000000000000000000000000000000", digest, agentapi.Approve, soon), a.ID},
		{"expired", signerapi.ReasonStatementExpired, statement(approverDev, a.ID, digest, agentapi.Approve, time.Now().Add(-time.Second)), a.ID},
		{"malformed", signerapi.ReasonBadStatement, json.RawMessage(`{"approval_id":1}`), a.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := signerclient.ReasonOf(agent.PostStatement(ctx, tc.id, tc.body))
			if r != tc.reason {
				t.Fatalf("reason %q, want %q", r, tc.reason)
			}
		})
	}
	good := statement(approverDev, a.ID, digest, agentapi.Approve, soon)
	if err := agent.PostStatement(ctx, a.ID, good); err != nil {
		t.Fatalf("the approver's statement: %v", err)
	}
	res := <-done
	if res.err != nil || res.r.Approval != a.ID {
		t.Fatalf("approved request: %+v, %v", res.r, res.err)
	}
	if r, _ := signerclient.ReasonOf(agent.PostStatement(ctx, a.ID, good)); r != signerapi.ReasonNotPending {
		t.Fatalf("replayed statement: reason %q", r)
	}

	// A statement may name the hash of the held request's arguments
	// instead of the digest (an approval request in the conversation,
	// docs/payments.md "Agent payments").
	go func() {
		r, err := agent.SignTransaction(ctx, f.pay(t, 2600000))
		done <- result{r, err}
	}()
	h2 := waitHold()
	if err := agent.PostStatement(ctx, h2.ID, statement(approverDev, h2.ID, agentapi.Sum(h2.Arguments()), agentapi.Approve, soon)); err != nil {
		t.Fatalf("a statement naming the arguments: %v", err)
	}
	if res := <-done; res.err != nil || res.r.Approval != h2.ID {
		t.Fatalf("request approved by its arguments: %+v, %v", res.r, res.err)
	}

	// A token that names no approver is decided by the admin only.
	plain := &signerclient.Client{BaseURL: srv.URL, Token: f.tokenString(t, "plain", "")}
	go func() {
		r, err := plain.SignTransaction(ctx, f.pay(t, 2500000))
		done <- result{r, err}
	}()
	h := waitHold()
	if r, _ := signerclient.ReasonOf(plain.PostStatement(ctx, h.ID, statement(approverDev, h.ID, digestOf(t, h), agentapi.Approve, soon))); r != signerapi.ReasonNoApprover {
		t.Fatalf("statement for a token without approver: reason %q", r)
	}
	f.s.Decide(ctx, h.ID, false)
	if r, _ := signerclient.ReasonOf((<-done).err); r != signerapi.RuleApprovalDenied {
		t.Fatalf("denied request: reason %q", r)
	}
}

func digestOf(t *testing.T, a signerapi.Approval) agentapi.Digest {
	t.Helper()
	d, err := agentapi.ParseDigest(a.MessageSHA256)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
