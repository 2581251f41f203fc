package agent

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/chatmcp/chatmcp/x402pay"
)

// TestPayConfig: the pay block's effective configuration (never the
// token), the digest of a configuration without pay unchanged by the
// key's existence, and every refusal of the block, each naming its key.
func TestPayConfig(t *testing.T) {
	const mint = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
	good := "pay:\n  signer: https://127.0.0.1:8446\n  policy: signer.yaml\n  token: {secret: signer-token}\n  rpc: http://127.0.0.1:8899\n  max_per_call: 5000\n  assets: [" + mint + "]\n"
	load := func(pay string) (*Loaded, error) {
		p, dir := writeConfig(t, "  url: http://127.0.0.1:8088/v1\n  model: tiny-chat")
		if err := os.WriteFile(filepath.Join(dir, "signer.yaml"), []byte(testPolicy), 0o600); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if err := os.WriteFile(p, append(b, pay...), 0o600); err != nil {
			t.Fatal(err)
		}
		return LoadConfig(p)
	}
	without, err := load("")
	if err != nil || without.Effective.Pay != nil {
		t.Fatalf("without pay: %v, %+v", err, without)
	}
	l, err := load(good)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Effective.Pay
	if p == nil || p.Signer != "https://127.0.0.1:8446" || p.MaxPerCall != 5000 || p.Network != x402.SolanaMainnet || p.PolicySHA256 != agentapi.Sum([]byte(testPolicy)) || l.SignerPolicy == nil {
		t.Fatalf("effective pay %+v", p)
	}
	if l.Effective.Digest() == without.Effective.Digest() {
		t.Error("pay does not change the configuration digest")
	}
	if strings.Contains(string(l.Effective.Canonical()), "signer-token") {
		t.Error("the effective configuration names the token's secret")
	}
	withoutPay := l.Effective
	withoutPay.Pay = nil
	if withoutPay.Digest() != without.Effective.Digest() {
		t.Error("a configuration without pay does not keep its digest")
	}
	for name, c := range map[string]struct{ from, to, want string }{
		"no signer":      {"  signer: https://127.0.0.1:8446\n", "", "pay.signer"},
		"http signer":    {"https://127.0.0.1:8446", "http://127.0.0.1:8446", "pay signer url"},
		"no policy":      {"  policy: signer.yaml\n", "", "pay.policy"},
		"missing policy": {"signer.yaml", "nope.yaml", "pay.policy"},
		"no token":       {"  token: {secret: signer-token}\n", "", "pay.token"},
		"empty token":    {"signer-token", "", "pay.token"},
		"no rpc":         {"  rpc: http://127.0.0.1:8899\n", "", "pay.rpc"},
		"no max":         {"  max_per_call: 5000\n", "", "pay.max_per_call"},
		"zero max":       {"max_per_call: 5000", "max_per_call: 0", "pay.max_per_call"},
		"no assets":      {"  assets: [" + mint + "]\n", "", "pay.assets"},
		"bad asset":      {mint, "notbase58!", "pay.assets"},
		"not Solana":     {"  max_per_call", "  network: eip155:8453\n  max_per_call", "pay.network"},
		"unknown key":    {"  rpc:", "  rpcs:", "rpcs"},
	} {
		if _, err := load(strings.Replace(good, c.from, c.to, 1)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		}
	}
}

// TestNewPayerMatchesConfig: an agent whose Payer does not match the pay
// block its evidence shows (none, another limit, a Payer without pay) is
// not started.
func TestNewPayerMatchesConfig(t *testing.T) {
	p, _ := writeConfig(t, "  url: http://127.0.0.1:8088/v1\n  model: tiny-chat")
	l, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chat.New(&chat.Options{Relay: "http://127.0.0.1:1", Wallet: w, Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	const mint = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
	pay := &agentapi.Pay{Signer: "https://127.0.0.1:8446", PolicySHA256: agentapi.Sum([]byte(testPolicy)), Network: x402.SolanaLocal, Assets: []string{mint}, MaxPerCall: 5000}
	payer := func(max uint64) *Payer {
		return &Payer{URL: pay.Signer, Signer: &signerclient.Client{BaseURL: pay.Signer},
			Pay: &x402pay.Payer{Network: pay.Network, Assets: []string{mint}, MaxAmount: max}}
	}
	for name, c2 := range map[string]struct {
		pay   *agentapi.Pay
		payer *Payer
	}{
		"pay without a payer":  {pay, nil},
		"a payer without pay":  {nil, payer(5000)},
		"another max_per_call": {pay, payer(5001)},
	} {
		cfg := l.Effective
		cfg.Pay = c2.pay
		_, err := New(&Options{Config: cfg, Reader: c, Writer: c, Model: &ModelClient{}, Data: t.TempDir(), Payer: c2.payer})
		if err == nil || !strings.Contains(err.Error(), "Payer must be set exactly when Config.Pay is") {
			t.Errorf("%s: %v", name, err)
		}
	}
	cfg := l.Effective
	cfg.Pay = pay
	if _, err := New(&Options{Config: cfg, Reader: c, Writer: c, Model: &ModelClient{}, Data: t.TempDir(), Payer: payer(5000)}); err != nil {
		t.Errorf("a matching payer: %v", err)
	}
}
