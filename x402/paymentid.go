package x402

import (
	"fmt"

	"github.com/chatmcp/chatmcp/internal/wire"
)

// ExtPaymentIdentifier is the payment-identifier extension's key
// (extensions/payment_identifier.md): a client-chosen idempotency id.
const ExtPaymentIdentifier = "payment-identifier"

type paymentIDInfo struct {
	Required bool   `json:"required"`
	ID       string `json:"id,omitzero"`
}

// PaymentID returns the payment identifier a payment carries, or "" when
// it carries none. An id must be 16-128 characters of [A-Za-z0-9_-].
func PaymentID(p *PaymentPayload) (string, error) {
	ext, ok := p.Extensions[ExtPaymentIdentifier]
	if !ok || len(ext.Info) == 0 {
		return "", nil
	}
	var info paymentIDInfo
	if err := wire.Decode(ext.Info, &info); err != nil {
		return "", fmt.Errorf("%w: payment-identifier: %v", ErrMalformed, err)
	}
	if info.ID == "" {
		return "", nil
	}
	if err := ValidPaymentID(info.ID); err != nil {
		return "", err
	}
	return info.ID, nil
}

// ValidPaymentID checks the form of a payment identifier.
func ValidPaymentID(id string) error {
	if len(id) < 16 || len(id) > 128 || !allIn(id, "-_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
		return fmt.Errorf("%w: payment identifier must be 16-128 characters of [A-Za-z0-9_-]", ErrMalformed)
	}
	return nil
}

// WithPaymentID sets p's payment identifier.
func WithPaymentID(p *PaymentPayload, id string) error {
	if err := ValidPaymentID(id); err != nil {
		return err
	}
	info := fmt.Sprintf(`{"required":false,"id":%q}`, id)
	if p.Extensions == nil {
		p.Extensions = map[string]Extension{}
	}
	p.Extensions[ExtPaymentIdentifier] = Extension{Info: []byte(info), Schema: []byte(paymentIDSchema)}
	return nil
}

const paymentIDSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"required":{"type":"boolean"},"id":{"type":"string","minLength":16,"maxLength":128}},"required":["required"]}`
