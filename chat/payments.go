package chat

import (
	"context"
	"fmt"
	"net/http"

	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/x402"
)

// StampPayer pays a payment stamp (x402pay.Payer): it builds and signs an
// x402 `exact` payment of the requirements, within its own limits.
type StampPayer interface {
	Pay(ctx context.Context, req *x402.PaymentRequirements, resource *x402.ResourceInfo) (*x402.PaymentPayload, error)
}

// stampFor makes the stamp a recipient asked for over hash: a payment
// when the recipient set a price and this client has a Payer, otherwise
// proof of work.
func (c *Client) stampFor(ctx context.Context, n relayapi.StampNeeded, hash [32]byte) (*stamp.Stamp, error) {
	in := stamp.Input{Recipient: n.Recipient, Sender: c.Address(), Message: hash}
	if n.Payment != nil && c.opts.Payer != nil {
		// The relay is not trusted with what this client pays: the
		// requirements must pay the recipient, bound to this message.
		if n.Payment.PayTo != n.Recipient.String() || n.Payment.Extra == nil || n.Payment.Extra.Memo != stamp.Memo(in) {
			return nil, fmt.Errorf("the relay asked for a payment to %s that does not pay %s for this message", n.Payment.PayTo, n.Recipient)
		}
		p, err := c.opts.Payer.Pay(ctx, n.Payment, &x402.ResourceInfo{URL: "chatmcp:stamp:" + n.Recipient.String(), Description: "first message to " + n.Recipient.String()})
		if err != nil {
			return nil, fmt.Errorf("paying %s's stamp: %w", n.Recipient, err)
		}
		return stamp.NewPayment(p)
	}
	if n.Bits > c.opts.MaxStampBits {
		return nil, fmt.Errorf("%s asks for a %d-bit stamp, more than the %d bits this client mints", n.Recipient, n.Bits, c.opts.MaxStampBits)
	}
	return stamp.Mint(ctx, in, n.Bits)
}

// SetPrice publishes what strangers may pay instead of proof of work for
// a first message (an x402 `exact` transfer to this wallet), keeping the
// difficulty; nil removes the price. The relay must take payments.
func (c *Client) SetPrice(ctx context.Context, price *stamp.Price) error {
	me, err := c.User(ctx, c.Address())
	if err != nil {
		return err
	}
	req := relayapi.SettingsRequest{Difficulty: me.Difficulty, Price: price, NoPrice: price == nil}
	return c.do(ctx, http.MethodPut, relayapi.PathSettings, req, nil, true)
}
