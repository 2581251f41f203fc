package stamp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/chatmcp/chatmcp/x402"
	"github.com/gagliardetto/solana-go"
	"github.com/go-json-experiment/json"
)

// Price is what a recipient asks a stranger to pay, instead of proof of
// work, for a first message: an x402 `exact` transfer of Amount (atomic
// units) of the SPL mint Asset on Network (CAIP-2), to the recipient's own
// wallet (its associated token account).
type Price struct {
	Amount  string `json:"amount"`
	Asset   string `json:"asset"`
	Network string `json:"network"`
}

// Validate checks a price's form.
func (p *Price) Validate() error {
	if _, err := x402.ParseAmount(p.Amount); err != nil {
		return fmt.Errorf("price: %w", err)
	}
	if _, err := solana.PublicKeyFromBase58(p.Asset); err != nil {
		return fmt.Errorf("price: asset is not a Solana address")
	}
	if n, err := x402.ParseNetwork(p.Network); err != nil || !n.IsSolana() {
		return fmt.Errorf("price: network %q is not a Solana CAIP-2 id", p.Network)
	}
	return nil
}

// Sentinel errors of payment stamps (wrapped).
var (
	ErrNoPrice  = errors.New("the recipient takes no payment")
	ErrPayment  = errors.New("payment refused")
	ErrMismatch = errors.New("payment does not match the recipient's price for this message")
)

// Memo is the memo a payment stamp's transaction must carry: it binds the
// payment to one message from one sender to one recipient, so a payment
// cannot stamp another message.
func Memo(in Input) string {
	h := sha256.New()
	h.Write([]byte("chatmcp/stamp/x402/v1\x00"))
	h.Write(in.Recipient.PublicKey())
	h.Write(in.Sender.PublicKey())
	h.Write(in.Message[:])
	return "chatmcp-stamp:" + hex.EncodeToString(h.Sum(nil))
}

// Requirements are the x402 requirements of a payment stamp for in at
// price, paid through the facilitator whose fee payer is feePayer.
func Requirements(in Input, price *Price, feePayer string) *x402.PaymentRequirements {
	return &x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: price.Network, Amount: price.Amount, Asset: price.Asset,
		PayTo: in.Recipient.String(), MaxTimeoutSeconds: 60,
		Extra: &x402.Extra{FeePayer: feePayer, Memo: Memo(in)},
	}
}

// NewPayment wraps an x402 payment as a stamp.
func NewPayment(p *x402.PaymentPayload) (*Stamp, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxStamp {
		return nil, fmt.Errorf("payment of %d bytes does not fit a stamp", len(raw))
	}
	return &Stamp{Kind: KindX402, Proof: raw}, nil
}

// Settler settles a payment: x402.FacilitatorClient.
type Settler interface {
	Settle(ctx context.Context, p *x402.PaymentPayload, req *x402.PaymentRequirements) (*x402.SettleResponse, error)
}

// Payment verifies payment stamps by settling them through a facilitator:
// a stamp is accepted only once its transfer is on chain, and the
// facilitator's ledger refuses a second settlement of it (a replay).
type Payment struct {
	// Facilitator settles. Required.
	Facilitator Settler
	// FeePayer is the facilitator's fee payer (its /supported extra).
	// Required.
	FeePayer string
	// Network is the one network payments are accepted on. Required.
	Network string
	// Assets are the mints a price may name. Required: every settlement
	// costs the facilitator's fee payer a fee, so a price in a token
	// anyone can mint for nothing would let two wallets of one attacker
	// drain it.
	Assets []string
	// MinAmount is the least a price may ask, in atomic units (set it
	// above the cost of a fee, for the same reason). If zero, 1.
	MinAmount uint64
}

// CheckPrice checks that p is a price these payments can settle: its
// network, an allowed asset, at least MinAmount.
func (v *Payment) CheckPrice(p *Price) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Network != v.Network {
		return fmt.Errorf("payments are settled on %s, not %s", v.Network, p.Network)
	}
	if !slices.Contains(v.Assets, p.Asset) {
		return fmt.Errorf("asset %s is not one this relay takes (%s)", p.Asset, strings.Join(v.Assets, ", "))
	}
	if amount, _ := x402.ParseAmount(p.Amount); amount < v.MinAmount {
		return fmt.Errorf("a price must be at least %d", v.MinAmount)
	}
	return nil
}

// Verify checks that s is a payment of req.Price for in, and settles it.
func (v *Payment) Verify(ctx context.Context, s *Stamp, in Input, req Requirement) error {
	if s.Kind != KindX402 {
		return fmt.Errorf("%w %q", ErrUnknownKind, s.Kind)
	}
	if req.Price == nil {
		return ErrNoPrice
	}
	p, err := x402.DecodePaymentJSON(s.Proof)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	want := Requirements(in, req.Price, v.FeePayer)
	if p.X402Version != x402.Version || !p.Accepted.Equal(want) {
		return fmt.Errorf("%w (amount %s of %s to %s, memo bound to this message)", ErrMismatch, want.Amount, want.Asset, want.PayTo)
	}
	r, err := v.Facilitator.Settle(ctx, p, want)
	if err != nil {
		return fmt.Errorf("%w: facilitator: %v", ErrPayment, err)
	}
	if !r.Success {
		return fmt.Errorf("%w: %s: %s", ErrPayment, r.ErrorReason, r.ErrorMessage)
	}
	return nil
}
