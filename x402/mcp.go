package x402

import (
	"fmt"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/go-json-experiment/json"
)

// The MCP transport (transports-v2/mcp.md): a paid tool without payment
// answers a tool result with isError and the PaymentRequired both as
// structuredContent and as the JSON text of content[0]; the client retries
// with the PaymentPayload in params._meta["x402/payment"]; the server
// returns the SettleResponse in result._meta["x402/payment-response"].
const (
	MetaPayment         = "x402/payment"
	MetaPaymentResponse = "x402/payment-response"
)

// RequiredResult is the parts of an MCP tool result that signal payment
// required: StructuredContent and Text (content[0].text) carry the same
// PaymentRequired. The caller sets isError.
func RequiredResult(pr *PaymentRequired) (structured map[string]any, text string, err error) {
	b, err := json.Marshal(pr)
	if err != nil {
		return nil, "", err
	}
	if err := json.Unmarshal(b, &structured); err != nil {
		return nil, "", err
	}
	return structured, string(b), nil
}

// RequiredFromResult reads a PaymentRequired from a tool result's
// structuredContent (preferred) or content[0].text. It returns nil, nil
// when the result is not a payment-required result.
func RequiredFromResult(structured any, text string) (*PaymentRequired, error) {
	var raw []byte
	if structured != nil {
		b, err := json.Marshal(structured)
		if err != nil {
			return nil, fmt.Errorf("%w: structuredContent: %v", ErrMalformed, err)
		}
		raw = b
	} else if text != "" {
		raw = []byte(text)
	} else {
		return nil, nil
	}
	if len(raw) > MaxHeader {
		return nil, fmt.Errorf("%w: payment required longer than %d bytes", ErrMalformed, MaxHeader)
	}
	var probe struct {
		X402Version *int `json:"x402Version"`
		Accepts     any  `json:"accepts"`
	}
	if json.Unmarshal(raw, &probe) != nil || probe.X402Version == nil || probe.Accepts == nil {
		return nil, nil
	}
	var pr PaymentRequired
	if err := wire.Decode(raw, &pr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := pr.Validate(); err != nil {
		return nil, err
	}
	return &pr, nil
}

// PaymentFromMeta returns the payment in a request's _meta, or nil, nil
// when there is none. meta is the request's _meta as decoded JSON.
func PaymentFromMeta(meta map[string]any) (*PaymentPayload, error) {
	v, ok := meta[MetaPayment]
	if !ok || v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: _meta[%q]: %v", ErrMalformed, MetaPayment, err)
	}
	if len(b) > MaxHeader {
		return nil, fmt.Errorf("%w: _meta[%q] longer than %d bytes", ErrMalformed, MetaPayment, MaxHeader)
	}
	return DecodePaymentJSON(b)
}

// DecodePaymentJSON decodes and checks a PaymentPayload's JSON.
func DecodePaymentJSON(b []byte) (*PaymentPayload, error) {
	var p PaymentPayload
	if err := wire.Decode(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// ToMeta converts a payment or settle response to the generic JSON value
// an MCP _meta member holds.
func ToMeta(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// SettleFromMeta reads the settle response in a result's _meta, or nil,
// nil when there is none.
func SettleFromMeta(meta map[string]any) (*SettleResponse, error) {
	v, ok := meta[MetaPaymentResponse]
	if !ok || v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) > MaxHeader {
		return nil, fmt.Errorf("%w: _meta[%q]", ErrMalformed, MetaPaymentResponse)
	}
	var sr SettleResponse
	if err := wire.Decode(b, &sr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &sr, nil
}
