package x402

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// HTTP headers of the v2 transport (transports-v2/http.md). Each carries
// base64 of the JSON of one type. HeaderV1Payment is v1's payment header,
// accepted on input only.
const (
	HeaderPaymentRequired  = "PAYMENT-REQUIRED"
	HeaderPaymentSignature = "PAYMENT-SIGNATURE"
	HeaderPaymentResponse  = "PAYMENT-RESPONSE"
	HeaderV1Payment        = "X-PAYMENT"
)

// ErrMalformed is wrapped by every decoding error of this package.
var ErrMalformed = errors.New("malformed x402 data")

// EncodeHeader returns base64 (standard, padded) of v's JSON.
func EncodeHeader(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// decodeHeader undoes EncodeHeader strictly: at most MaxHeader characters,
// standard base64 (padded or not), then strict JSON (internal/wire).
func decodeHeader(s string, v any) error {
	if len(s) > MaxHeader {
		return fmt.Errorf("%w: header longer than %d bytes", ErrMalformed, MaxHeader)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return fmt.Errorf("%w: not base64", ErrMalformed)
		}
	}
	if err := wire.Decode(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// DecodePaymentRequired decodes a PAYMENT-REQUIRED header and checks it.
func DecodePaymentRequired(s string) (*PaymentRequired, error) {
	var pr PaymentRequired
	if err := decodeHeader(s, &pr); err != nil {
		return nil, err
	}
	if err := pr.Validate(); err != nil {
		return nil, err
	}
	return &pr, nil
}

// Validate checks a PaymentRequired's version and each of its requirements.
func (pr *PaymentRequired) Validate() error {
	if pr.X402Version != Version {
		return fmt.Errorf("%w: x402Version %d, want %d", ErrMalformed, pr.X402Version, Version)
	}
	if len(pr.Accepts) == 0 || len(pr.Accepts) > MaxAccepts {
		return fmt.Errorf("%w: %d accepted requirements, want 1-%d", ErrMalformed, len(pr.Accepts), MaxAccepts)
	}
	for i := range pr.Accepts {
		if err := pr.Accepts[i].Validate(); err != nil {
			return fmt.Errorf("%w: accepts[%d]: %v", ErrMalformed, i, err)
		}
	}
	return nil
}

// DecodePaymentPayload decodes a PAYMENT-SIGNATURE header (v2).
func DecodePaymentPayload(s string) (*PaymentPayload, error) {
	var p PaymentPayload
	if err := decodeHeader(s, &p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate checks a payment's version, its accepted requirements and that
// it carries a transaction.
func (p *PaymentPayload) Validate() error {
	if p.X402Version != Version && p.X402Version != 1 {
		return fmt.Errorf("%w: x402Version %d, want %d", ErrMalformed, p.X402Version, Version)
	}
	if err := p.Accepted.Validate(); err != nil && p.X402Version == Version {
		return fmt.Errorf("%w: accepted: %v", ErrMalformed, err)
	}
	if p.Payload.Transaction == "" {
		return fmt.Errorf("%w: payload.transaction is empty", ErrMalformed)
	}
	if _, err := PaymentID(p); err != nil {
		return err
	}
	return nil
}

// v1Payment is the JSON of v1's X-PAYMENT header: scheme and network at
// the top, and no accepted requirements.
type v1Payment struct {
	X402Version int            `json:"x402Version"`
	Scheme      string         `json:"scheme"`
	Network     string         `json:"network"`
	Payload     jsontext.Value `json:"payload"`
}

// DecodeV1Payment decodes v1's X-PAYMENT header into a PaymentPayload with
// X402Version 1 whose Accepted holds only the scheme and the network
// (mapped to CAIP-2); the server completes Accepted with Match. The v1
// payload is {"transaction": base64} or, in early v1, the base64 string.
func DecodeV1Payment(s string) (*PaymentPayload, error) {
	var v v1Payment
	if err := decodeHeader(s, &v); err != nil {
		return nil, err
	}
	if v.X402Version != 1 {
		return nil, fmt.Errorf("%w: X-PAYMENT with x402Version %d, want 1", ErrMalformed, v.X402Version)
	}
	network, err := NetworkFromV1(v.Network)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	p := &PaymentPayload{X402Version: 1, Accepted: PaymentRequirements{Scheme: v.Scheme, Network: network}}
	var str string
	if err := wire.Decode(v.Payload, &p.Payload); err != nil {
		if err2 := wire.Decode(v.Payload, &str); err2 != nil {
			return nil, fmt.Errorf("%w: v1 payload: %v", ErrMalformed, err)
		}
		p.Payload.Transaction = str
	}
	if p.Payload.Transaction == "" {
		return nil, fmt.Errorf("%w: payload.transaction is empty", ErrMalformed)
	}
	return p, nil
}

// PaymentFromRequest returns the payment an HTTP request carries:
// PAYMENT-SIGNATURE (v2), else X-PAYMENT (v1). It returns nil, nil when
// there is none.
func PaymentFromRequest(r *http.Request) (*PaymentPayload, error) {
	if h := r.Header.Get(HeaderPaymentSignature); h != "" {
		return DecodePaymentPayload(h)
	}
	if h := r.Header.Get(HeaderV1Payment); h != "" {
		return DecodeV1Payment(h)
	}
	return nil, nil
}

// DecodeSettleResponse decodes a PAYMENT-RESPONSE header.
func DecodeSettleResponse(s string) (*SettleResponse, error) {
	var sr SettleResponse
	if err := decodeHeader(s, &sr); err != nil {
		return nil, err
	}
	if _, err := ParseNetwork(sr.Network); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &sr, nil
}

// Match finds the requirements in accepts that a payment chose. A v2
// payment must repeat one of them exactly (Equal); a v1 payment names only
// the scheme and network, and the first requirements with both are
// copied into it.
func Match(p *PaymentPayload, accepts []PaymentRequirements) (*PaymentRequirements, error) {
	for i := range accepts {
		a := &accepts[i]
		if p.X402Version == 1 {
			if a.Scheme == p.Accepted.Scheme && a.Network == p.Accepted.Network {
				p.Accepted = *a
				return a, nil
			}
			continue
		}
		if p.Accepted.Equal(a) {
			return a, nil
		}
	}
	return nil, &Refusal{Reason: ReasonRequirementsMismatch, Msg: "the payment's accepted requirements are not among those this resource accepts"}
}
