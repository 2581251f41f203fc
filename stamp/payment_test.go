package stamp_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/x402"
)

const testMint = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"

func addr(t *testing.T) wallet.Address {
	w, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return w.Address()
}

// TestMemoBinds: the memo changes with the recipient, the sender and the
// message, and fits the spec's 256 bytes.
func TestMemoBinds(t *testing.T) {
	in := stamp.Input{Recipient: addr(t), Sender: addr(t), Message: [32]byte{1}}
	m := stamp.Memo(in)
	if len(m) > x402.MaxMemoBytes || !strings.HasPrefix(m, "chatmcp-stamp:") {
		t.Fatalf("memo %q", m)
	}
	for name, other := range map[string]stamp.Input{
		"recipient": {Recipient: addr(t), Sender: in.Sender, Message: in.Message},
		"sender":    {Recipient: in.Recipient, Sender: addr(t), Message: in.Message},
		"message":   {Recipient: in.Recipient, Sender: in.Sender, Message: [32]byte{2}},
	} {
		if stamp.Memo(other) == m {
			t.Errorf("another %s, same memo", name)
		}
	}
}

// TestCheckPrice reaches each refusal of a price.
func TestCheckPrice(t *testing.T) {
	v := &stamp.Payment{Network: x402.SolanaDevnet, Assets: []string{testMint}, MinAmount: 100}
	if err := v.CheckPrice(&stamp.Price{Amount: "100", Asset: testMint, Network: x402.SolanaDevnet}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		p    stamp.Price
		want string
	}{
		"malformed amount":  {stamp.Price{Amount: "1e3", Asset: testMint, Network: x402.SolanaDevnet}, "canonical"},
		"not an address":    {stamp.Price{Amount: "100", Asset: "x", Network: x402.SolanaDevnet}, "not a Solana address"},
		"not Solana":        {stamp.Price{Amount: "100", Asset: testMint, Network: "eip155:1"}, "not a Solana"},
		"other network":     {stamp.Price{Amount: "100", Asset: testMint, Network: x402.SolanaMainnet}, "settled on"},
		"other asset":       {stamp.Price{Amount: "100", Asset: "So11111111111111111111111111111111111111112", Network: x402.SolanaDevnet}, "not one this relay takes"},
		"under the minimum": {stamp.Price{Amount: "99", Asset: testMint, Network: x402.SolanaDevnet}, "at least 100"},
	} {
		if err := v.CheckPrice(&c.p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// TestPaymentVerifyRefusals: the checks a payment stamp fails before any
// facilitator is asked (Facilitator is nil: reaching it would panic).
func TestPaymentVerifyRefusals(t *testing.T) {
	v := &stamp.Payment{Network: x402.SolanaDevnet, FeePayer: "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", Assets: []string{testMint}}
	in := stamp.Input{Recipient: addr(t), Sender: addr(t), Message: [32]byte{3}}
	price := &stamp.Price{Amount: "100", Asset: testMint, Network: x402.SolanaDevnet}
	ctx := context.Background()
	if err := v.Verify(ctx, &stamp.Stamp{Kind: stamp.KindPoW, Proof: make([]byte, 8)}, in, stamp.Requirement{Price: price}); !errors.Is(err, stamp.ErrUnknownKind) {
		t.Errorf("a proof-of-work stamp: %v", err)
	}
	if err := v.Verify(ctx, &stamp.Stamp{Kind: stamp.KindX402, Proof: []byte("{}")}, in, stamp.Requirement{}); !errors.Is(err, stamp.ErrNoPrice) {
		t.Errorf("no price: %v", err)
	}
	if err := v.Verify(ctx, &stamp.Stamp{Kind: stamp.KindX402, Proof: []byte("{}")}, in, stamp.Requirement{Price: price}); !errors.Is(err, stamp.ErrMalformed) {
		t.Errorf("not a payment: %v", err)
	}
	req := stamp.Requirements(stamp.Input{Recipient: in.Recipient, Sender: in.Sender, Message: [32]byte{4}}, price, v.FeePayer)
	p := &x402.PaymentPayload{X402Version: 2, Accepted: *req, Payload: x402.ExactSVMPayload{Transaction: "AA=="}}
	st, err := stamp.NewPayment(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(ctx, st, in, stamp.Requirement{Price: price}); !errors.Is(err, stamp.ErrMismatch) {
		t.Errorf("a payment bound to another message: %v", err)
	}
}
