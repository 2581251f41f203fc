package x402pay_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/solrpc"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/chatmcp/chatmcp/x402pay"
	"github.com/gagliardetto/solana-go"
)

// TestLimits: requirements outside the payer's limits are refused before
// anything is built, signed or asked of the RPC endpoint (which does not
// exist here).
func TestLimits(t *testing.T) {
	const mint, other = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", "So11111111111111111111111111111111111111112"
	p := &x402pay.Payer{RPC: &solrpc.Client{URL: "http://127.0.0.1:1"}, Address: solana.MustPublicKeyFromBase58(other),
		Network: x402.SolanaDevnet, Assets: []string{mint}, MaxAmount: 1000}
	req := func(mod func(*x402.PaymentRequirements)) *x402.PaymentRequirements {
		r := &x402.PaymentRequirements{Scheme: x402.SchemeExact, Network: x402.SolanaDevnet, Amount: "1000", Asset: mint,
			PayTo: "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", MaxTimeoutSeconds: 60, Extra: &x402.Extra{FeePayer: other}}
		mod(r)
		return r
	}
	for name, c := range map[string]struct {
		req   *x402.PaymentRequirements
		limit bool
		want  string
	}{
		"another mint (1000 of something else)": {req(func(r *x402.PaymentRequirements) { r.Asset = other }), true, "not one the payer pays in"},
		"over the limit":                        {req(func(r *x402.PaymentRequirements) { r.Amount = "1001" }), true, "1001 asked, at most 1000"},
		"another network":                       {req(func(r *x402.PaymentRequirements) { r.Network = x402.SolanaMainnet }), false, "is not exact on"},
		"another scheme":                        {req(func(r *x402.PaymentRequirements) { r.Scheme = "upto" }), false, "is not exact on"},
		"malformed":                             {req(func(r *x402.PaymentRequirements) { r.Amount = "-1" }), false, "canonical"},
	} {
		_, err := p.Pay(context.Background(), c.req, nil)
		if err == nil || errors.Is(err, x402pay.ErrLimit) != c.limit || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	zero := *p
	zero.MaxAmount = 0
	if _, err := zero.Pay(context.Background(), req(func(*x402.PaymentRequirements) {}), nil); !errors.Is(err, x402pay.ErrLimit) {
		t.Errorf("MaxAmount zero paid: %v", err)
	}
}
