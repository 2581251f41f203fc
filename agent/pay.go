package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/chatmcp/chatmcp/x402pay"
)

// Payer pays for the agent's paid tool calls (x402 `exact` on Solana)
// through chatmcp-signer, which holds the key, applies its policy and the
// token's budget, and holds a payment above its approve_above for the
// token's approver.
type Payer struct {
	// Pay builds the transfer and has the signer sign it (an x402pay.Payer
	// on an x402pay.Remote); its MaxAmount is the configuration's
	// max_per_call. Required.
	Pay *x402pay.Payer
	// Signer lists the token's held requests, to pass them on to the
	// approver. Required.
	Signer *signerclient.Client
	// URL is the signer's URL, named in approval requests: the approver's
	// `chatmcp chat approve` delivers its statement there. Required.
	URL string
	// PollEvery is how often a payment in flight asks the signer whether
	// it holds it. If zero, 500 ms.
	PollEvery time.Duration
}

// Rules of the agent's own refusals to pay (the signer's are signerapi
// rules).
const (
	RuleMaxPerCall = "max_per_call" // no requirement within pay.max_per_call, pay.assets and pay.network
)

// PayRefusal is a payment the agent did not make: Rule names the rule
// (RuleMaxPerCall or a signerapi rule), Msg says why.
type PayRefusal struct {
	Rule string
	Msg  string
}

func (e *PayRefusal) Error() string { return e.Rule + ": " + e.Msg }

// pay chooses the first requirement within the payer's limits and pays it.
// While the signer holds the payment for a person, onHeld is called once
// per approval.
func (p *Payer) pay(ctx context.Context, pr *x402.PaymentRequired, onHeld func(signerapi.Approval)) (*x402.PaymentPayload, error) {
	var req *x402.PaymentRequirements
	for i := range pr.Accepts {
		r := &pr.Accepts[i]
		amount, err := x402.ParseAmount(r.Amount)
		if err == nil && r.Scheme == x402.SchemeExact && r.Network == p.Pay.Network && slices.Contains(p.Pay.Assets, r.Asset) && amount <= p.Pay.MaxAmount {
			req = r
			break
		}
	}
	if req == nil {
		return nil, &PayRefusal{RuleMaxPerCall, fmt.Sprintf("none of the %d payment options is within %d atomic units of %v on %s", len(pr.Accepts), p.Pay.MaxAmount, p.Pay.Assets, p.Pay.Network)}
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.watchHeld(pctx, onHeld)
	}()
	payment, err := p.Pay.Pay(ctx, req, pr.Resource)
	stop()
	<-done
	if err != nil {
		if rule, ok := signerclient.ReasonOf(err); ok {
			var ae *signerclient.Error
			msg := err.Error()
			if errors.As(err, &ae) && ae.Msg != "" {
				msg = ae.Msg
			}
			return nil, &PayRefusal{rule, truncate(msg, 300)}
		}
		if errors.Is(err, x402pay.ErrLimit) {
			return nil, &PayRefusal{RuleMaxPerCall, truncate(err.Error(), 300)}
		}
		return nil, fmt.Errorf("paying: %w", err)
	}
	return payment, nil
}

// watchHeld asks the signer for the token's held requests until ctx ends,
// calling onHeld once for each new one. The token's chain is the agent's
// own, and the agent pays one call at a time per conversation, so a held
// request is this payment's (another conversation's would be announced
// there too: harmless, the approver decides each by its arguments).
func (p *Payer) watchHeld(ctx context.Context, onHeld func(signerapi.Approval)) {
	every := p.PollEvery
	if every == 0 {
		every = 500 * time.Millisecond
	}
	seen := map[string]bool{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l, err := p.Signer.Approvals(ctx)
		if err != nil {
			continue
		}
		for _, a := range l {
			if !seen[a.ID] {
				seen[a.ID] = true
				onHeld(a)
			}
		}
	}
}

// callPaying calls a tool; when the gateway answers payment required (the
// x402 MCP transport) and the agent has a Payer, it pays and calls once
// more with the payment in _meta, recording the settled transaction in
// rec. A payment not made is the call's error result, naming the rule.
func (a *Agent) callPaying(ctx context.Context, c *conv, s *ToolSession, name string, args json.RawMessage, rec *agentapi.ToolCall, onHeld func(HeldCall)) (*mcp.CallToolResult, error) {
	res, err := s.Call(ctx, name, args, onHeld)
	if err != nil || a.o.Payer == nil || !res.IsError {
		return res, err
	}
	pr := requiredOf(res)
	if pr == nil {
		return res, nil
	}
	payment, err := a.o.Payer.pay(ctx, pr, func(ap signerapi.Approval) {
		args := ap.Arguments()
		rec.ApprovalID = ap.ID
		a.requestApproval(ctx, c, &agentapi.ApprovalRequest{ID: ap.ID, Gateway: a.o.Payer.URL, Tool: signerapi.ToolPayment + " for " + truncate(name, 200),
			Arguments: string(args), ArgumentsSHA256: agentapi.Sum(args), RequestedBy: a.self, Expires: ap.Expires})
	})
	if err != nil {
		var pe *PayRefusal
		text := "not paid: the payment failed"
		note := "(I did not pay for " + truncate(name, 100) + ": the payment failed.)"
		if errors.As(err, &pe) {
			text = "not paid: refused by rule " + pe.Rule + " (" + pe.Msg + ")"
			note = "(I did not pay for " + truncate(name, 100) + ": refused by rule " + pe.Rule + ".)"
		}
		c.payNotes = append(c.payNotes, note)
		a.o.Logger.Warn("not paying for a tool call", "conversation", c.id, "tool", name, "err", err)
		return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil
	}
	meta, err := x402.ToMeta(payment)
	if err != nil {
		return nil, err
	}
	res, err = s.CallMeta(ctx, name, args, onHeld, mcp.Meta{x402.MetaPayment: meta})
	if err != nil {
		return nil, err
	}
	if sr, err := x402.SettleFromMeta(res.Meta); err == nil && sr != nil && sr.Success {
		rec.Payment = truncate(sr.Transaction, 128)
	}
	return res, nil
}

// requiredOf is the PaymentRequired of a payment-required tool result, or
// nil.
func requiredOf(res *mcp.CallToolResult) *x402.PaymentRequired {
	text := ""
	if len(res.Content) > 0 {
		if t, ok := res.Content[0].(*mcp.TextContent); ok {
			text = t.Text
		}
	}
	pr, err := x402.RequiredFromResult(res.StructuredContent, text)
	if err != nil {
		return nil
	}
	return pr
}
