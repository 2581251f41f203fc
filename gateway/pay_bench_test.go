package gateway

import (
	"crypto/ed25519"
	"testing"

	"github.com/gagliardetto/solana-go"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/x402"
)

// BenchmarkPayStepLocal is the gateway's own work for a paid call,
// without the facilitator's round trip: the price lookup, the offered
// requirements, the payment decoded from _meta and matched against them,
// and the receipt put into the result. Compare it with
// BenchmarkToolsCall's unpaid call (docs/BENCHMARKS.md).
func BenchmarkPayStepLocal(b *testing.B) {
	key := func(seed byte) (solana.PublicKey, ed25519.PrivateKey) {
		k := ed25519.NewKeyFromSeed(append(make([]byte, 31), seed))
		return solana.PublicKeyFromBytes(k.Public().(ed25519.PublicKey)), k
	}
	fp, _ := key(1)
	payer, payerKey := key(2)
	payTo, _ := key(3)
	mint, _ := key(4)
	price := Price{Amount: "10000", Asset: mint.String(), PayTo: payTo.String(), Network: x402.SolanaDevnet}
	t := &tool{exposed: "up_echo", def: &mcp.Tool{Name: "echo", Description: "echo"},
		upstream: &backend{cfg: &Upstream{Name: "up", Prices: []ToolPrice{{Tools: "ech*", Price: price}}}}}
	s := &Server{}
	c := &toolCall{tool: t}
	pr := s.requirements(c, priceOf(t), fp.String())
	p, err := x402.PayExact(&pr.Accepts[0], pr.Resource, payer, x402.KeySigner(payerKey), 6, solana.Hash{1})
	if err != nil {
		b.Fatal(err)
	}
	m, _ := x402.ToMeta(p)
	meta := mcp.Meta{x402.MetaPayment: m}
	receipt := &x402.SettleResponse{Success: true, Transaction: "5" + string(make([]byte, 86)), Network: x402.SolanaDevnet, Payer: payer.String()}
	for b.Loop() {
		pr := s.requirements(c, priceOf(t), fp.String())
		got, err := x402.PaymentFromMeta(meta)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := x402.Match(got, pr.Accepts); err != nil {
			b.Fatal(err)
		}
		withReceipt(&mcp.CallToolResult{}, receipt)
	}
}
