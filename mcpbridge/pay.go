package mcpbridge

import (
	"context"
	"encoding/json"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/chatmcp/chatmcp/x402"
)

// PayFunc pays for a tool call that the server answered with an x402
// payment-required result (the MCP transport of x402 v2): it returns the
// payment to send in the call's _meta["x402/payment"], or an error when it
// will not pay (over its limits, a refusal of its signer).
type PayFunc func(ctx context.Context, pr *x402.PaymentRequired) (*x402.PaymentPayload, error)

// postPaying sends a tools/call; when its answer is a payment-required
// result it pays (Options.Pay) and sends the call once more with the
// payment, relaying that answer. A payment that is not made leaves the
// payment-required result as the answer, and the reason in the log.
func (b *bridge) postPaying(ctx context.Context, req *jsonrpc.Request) {
	var pr *x402.PaymentRequired
	var held jsonrpc.Message
	b.send(ctx, req, func(m jsonrpc.Message) {
		if r, ok := m.(*jsonrpc.Response); ok && r.ID == req.ID && held == nil {
			if p := paymentRequired(r); p != nil {
				pr, held = p, m
				return
			}
		}
		b.write(ctx, m)
	})
	if held == nil {
		return
	}
	payment, err := b.opts.Pay(ctx, pr)
	if err != nil {
		b.logf("not paying for %s: %v", requestName(req), err)
		b.write(ctx, held)
		return
	}
	retry, err := withPayment(req, payment)
	if err != nil {
		b.logf("not paying for %s: %v", requestName(req), err)
		b.write(ctx, held)
		return
	}
	b.post(ctx, retry)
}

// paymentRequired is the PaymentRequired of a payment-required tool
// result, or nil.
func paymentRequired(r *jsonrpc.Response) *x402.PaymentRequired {
	if r.Error != nil || len(r.Result) == 0 {
		return nil
	}
	var res struct {
		IsError           bool `json:"isError"`
		StructuredContent any  `json:"structuredContent"`
		Content           []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if json.Unmarshal(r.Result, &res) != nil || !res.IsError {
		return nil
	}
	text := ""
	if len(res.Content) > 0 && res.Content[0].Type == "text" {
		text = res.Content[0].Text
	}
	pr, err := x402.RequiredFromResult(res.StructuredContent, text)
	if err != nil {
		return nil
	}
	return pr
}

// withPayment is req with the payment in params._meta["x402/payment"].
func withPayment(req *jsonrpc.Request, p *x402.PaymentPayload) (*jsonrpc.Request, error) {
	var params map[string]any
	if err := json.Unmarshal(req.Params, &params); err != nil {
		return nil, err
	}
	meta, _ := params["_meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	m, err := x402.ToMeta(p)
	if err != nil {
		return nil, err
	}
	meta[x402.MetaPayment] = m
	params["_meta"] = meta
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	return &jsonrpc.Request{ID: req.ID, Method: req.Method, Params: raw}, nil
}

// paying reports whether req already carries a payment (the retry, or a
// client that pays itself): it is relayed as it is.
func paying(req *jsonrpc.Request) bool {
	var params struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	json.Unmarshal(req.Params, &params)
	_, ok := params.Meta[x402.MetaPayment]
	return ok
}
