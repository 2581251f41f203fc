// Package x402 is the x402 v2 payment protocol as ChatMCP speaks it: the
// wire types (PaymentRequired, PaymentRequirements, PaymentPayload,
// SettleResponse, VerifyResponse, SupportedResponse), their HTTP headers and
// MCP _meta transport, CAIP-2 network ids, the facilitator's paths and
// reason codes, and the `exact` scheme on Solana: a client-side builder of
// the transfer transaction and the facilitator's verification of it. It
// talks to no server and no chain; the facilitator lives in package
// facilitator.
package x402

import (
	"fmt"
	"math/big"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// Version is the protocol version this package speaks.
const Version = 2

// SchemeExact is the one scheme implemented: a transfer of an exact amount.
const SchemeExact = "exact"

// ResourceInfo describes the resource a payment is for (spec §5.1.2).
type ResourceInfo struct {
	URL         string `json:"url"`
	Description string `json:"description,omitzero"`
	MimeType    string `json:"mimeType,omitzero"`
}

// Extra is the scheme-specific part of PaymentRequirements. For `exact` on
// Solana it carries the fee payer and an optional seller memo
// (scheme_exact_svm.md); other members are refused by the strict decoder.
type Extra struct {
	// FeePayer is the base58 address that pays the transaction fee (the
	// facilitator's fee-payer key). Required for Solana.
	FeePayer string `json:"feePayer,omitzero"`
	// Memo, when set, is the exact UTF-8 data of the one Memo instruction
	// the transaction must carry (at most MaxMemoBytes).
	Memo string `json:"memo,omitzero"`
	// Name, Version, Decimals are informational (EVM uses name and
	// version); Decimals is the mint's decimals when the server knows them.
	Name     string `json:"name,omitzero"`
	Version  string `json:"version,omitzero"`
	Decimals *int   `json:"decimals,omitzero"`
}

// PaymentRequirements is one way to pay that a resource accepts (§5.1.2).
type PaymentRequirements struct {
	Scheme            string `json:"scheme"`
	Network           string `json:"network"`
	Amount            string `json:"amount"`
	Asset             string `json:"asset"`
	PayTo             string `json:"payTo"`
	MaxTimeoutSeconds int    `json:"maxTimeoutSeconds"`
	Extra             *Extra `json:"extra,omitzero"`
}

// Extension is one protocol extension's data (§5.1.2): server-provided info
// and the JSON Schema of info.
type Extension struct {
	Info   jsontext.Value `json:"info"`
	Schema jsontext.Value `json:"schema,omitzero"`
}

// PaymentRequired is what a resource answers when it wants payment (§5.1).
type PaymentRequired struct {
	X402Version int                   `json:"x402Version"`
	Error       string                `json:"error,omitzero"`
	Resource    *ResourceInfo         `json:"resource"`
	Accepts     []PaymentRequirements `json:"accepts"`
	Extensions  map[string]Extension  `json:"extensions,omitzero"`
}

// ExactSVMPayload is PaymentPayload.Payload for `exact` on Solana: the
// base64 wire transaction, signed by the payer and not by the fee payer.
type ExactSVMPayload struct {
	Transaction string `json:"transaction"`
}

// PaymentPayload is a client's payment (§5.2).
type PaymentPayload struct {
	X402Version int                  `json:"x402Version"`
	Resource    *ResourceInfo        `json:"resource,omitzero"`
	Accepted    PaymentRequirements  `json:"accepted"`
	Payload     ExactSVMPayload      `json:"payload"`
	Extensions  map[string]Extension `json:"extensions,omitzero"`
}

// SettleResponse is the outcome of a settlement (§5.3), sent back to the
// client in PAYMENT-RESPONSE or _meta["x402/payment-response"].
type SettleResponse struct {
	Success     bool   `json:"success"`
	ErrorReason string `json:"errorReason,omitzero"`
	// ErrorMessage is ChatMCP's human-readable detail of ErrorReason (an
	// addition to the spec's fields; peers ignore it).
	ErrorMessage string `json:"errorMessage,omitzero"`
	Payer        string `json:"payer,omitzero"`
	Transaction  string `json:"transaction"`
	Network      string `json:"network"`
}

// VerifyResponse is the outcome of a verification (§5.4).
type VerifyResponse struct {
	IsValid       bool   `json:"isValid"`
	InvalidReason string `json:"invalidReason,omitzero"`
	// InvalidMessage is ChatMCP's human-readable detail of InvalidReason.
	InvalidMessage string `json:"invalidMessage,omitzero"`
	Payer          string `json:"payer,omitzero"`
}

// FacilitatorRequest is the body of POST /verify and POST /settle (§7.1).
type FacilitatorRequest struct {
	X402Version         int                 `json:"x402Version,omitzero"`
	PaymentPayload      PaymentPayload      `json:"paymentPayload"`
	PaymentRequirements PaymentRequirements `json:"paymentRequirements"`
}

// SupportedKind is one (version, scheme, network) a facilitator handles.
type SupportedKind struct {
	X402Version int    `json:"x402Version"`
	Scheme      string `json:"scheme"`
	Network     string `json:"network"`
	Extra       *Extra `json:"extra,omitzero"`
}

// SupportedResponse is the body of GET /supported (§7.3).
type SupportedResponse struct {
	Kinds      []SupportedKind     `json:"kinds"`
	Extensions []string            `json:"extensions"`
	Signers    map[string][]string `json:"signers"`
}

// Facilitator paths (§7).
const (
	PathVerify    = "/verify"
	PathSettle    = "/settle"
	PathSupported = "/supported"
)

// Limits on what the decoders accept.
const (
	// MaxHeader bounds an encoded header value or _meta member (base64
	// JSON): a Solana transaction is at most 1232 bytes, so a payload is
	// well under this.
	MaxHeader = 8 << 10
	// MaxBody bounds a facilitator request body.
	MaxBody = 16 << 10
	// MaxMemoBytes bounds extra.memo (scheme_exact_svm.md).
	MaxMemoBytes = 256
	// MaxAccepts bounds the requirements one PaymentRequired lists.
	MaxAccepts = 16
)

// ParseAmount parses an amount in atomic units: a decimal string of a
// positive integer that fits in 64 bits (an SPL amount), no sign, no
// leading zeros.
func ParseAmount(s string) (uint64, error) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("amount %q is not a canonical decimal integer", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("amount %q is not a canonical decimal integer", s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if n, ok := new(big.Int).SetString(s, 10); ok && n.BitLen() > 64 {
			return 0, fmt.Errorf("amount %q exceeds 64 bits", s)
		}
		return 0, fmt.Errorf("amount %q: %v", s, err)
	}
	if v == 0 {
		return 0, fmt.Errorf("amount is zero")
	}
	return v, nil
}

// Validate checks the shape of requirements: scheme, CAIP-2 network, a
// canonical positive amount, asset and payTo present, a positive timeout.
// It does not check that the facilitator supports them.
func (r *PaymentRequirements) Validate() error {
	if r.Scheme == "" {
		return fmt.Errorf("requirements: no scheme")
	}
	if _, err := ParseNetwork(r.Network); err != nil {
		return fmt.Errorf("requirements: %w", err)
	}
	if _, err := ParseAmount(r.Amount); err != nil {
		return fmt.Errorf("requirements: %w", err)
	}
	if r.Asset == "" || r.PayTo == "" {
		return fmt.Errorf("requirements: asset and payTo are required")
	}
	if r.MaxTimeoutSeconds <= 0 {
		return fmt.Errorf("requirements: maxTimeoutSeconds must be positive")
	}
	if r.Extra != nil && len(r.Extra.Memo) > MaxMemoBytes {
		return fmt.Errorf("requirements: extra.memo is %d bytes, more than %d", len(r.Extra.Memo), MaxMemoBytes)
	}
	return nil
}

// Equal reports whether two requirements name the same payment: scheme,
// network, amount, asset, payTo, fee payer and memo. The timeout and the
// informational extra fields are not compared.
func (r *PaymentRequirements) Equal(o *PaymentRequirements) bool {
	var a, b Extra
	if r.Extra != nil {
		a = *r.Extra
	}
	if o.Extra != nil {
		b = *o.Extra
	}
	return r.Scheme == o.Scheme && r.Network == o.Network && r.Amount == o.Amount &&
		r.Asset == o.Asset && r.PayTo == o.PayTo && a.FeePayer == b.FeePayer && a.Memo == b.Memo
}
