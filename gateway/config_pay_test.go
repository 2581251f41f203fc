package gateway_test

import (
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/x402"
)

// TestPriceConfig: every refusal of the prices and facilitator keys.
func TestPriceConfig(t *testing.T) {
	const mint, owner = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
	cfg := func(price, facilitator string) string {
		return "listen: 127.0.0.1:0\nupstreams:\n  up:\n    url: http://127.0.0.1:1/mcp\n    prices:\n      - " + price + "\n" + facilitator
	}
	good := `{tools: "q*", price: {amount: "10", asset: ` + mint + `, pay_to: ` + owner + `, network: "` + x402.SolanaDevnet + `"}}`
	fac := "facilitator: {url: http://127.0.0.1:2}\n"
	if c, err := gateway.ParseConfig([]byte(cfg(good, fac))); err != nil || c.Upstreams["up"].Prices[0].Price.Amount != "10" {
		t.Fatalf("a good price: %v", err)
	}
	for name, c := range map[string]struct{ price, fac, want string }{
		"no facilitator":  {good, "", "facilitator: required"},
		"bad facilitator": {good, "facilitator: {url: ftp://x}\n", "is not an http(s) URL"},
		"bad pattern":     {strings.Replace(good, `"q*"`, `"["`, 1), fac, "is not a pattern"},
		"zero amount":     {strings.Replace(good, `"10"`, `"0"`, 1), fac, "amount is zero"},
		"bad asset":       {strings.Replace(good, mint, "notbase58!", 1), fac, "asset"},
		"bad pay_to":      {strings.Replace(good, owner, "0OIl", 1), fac, "pay_to"},
		"not Solana":      {strings.Replace(good, x402.SolanaDevnet, "eip155:8453", 1), fac, "not a Solana CAIP-2 id"},
		"unknown key":     {strings.Replace(good, "tools:", "tool:", 1), fac, "tool"},
	} {
		if _, err := gateway.ParseConfig([]byte(cfg(c.price, c.fac))); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		}
	}
}
