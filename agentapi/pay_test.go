package agentapi_test

import (
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/agentapi"
)

// TestConfigPay: the pay block's checks, each reached, and its place in
// the digest.
func TestConfigPay(t *testing.T) {
	good := func() agentapi.Config {
		c := testConfig()
		c.Pay = &agentapi.Pay{Signer: "https://127.0.0.1:8446", PolicySHA256: agentapi.Sum([]byte("signer policy")), Network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
			Assets: []string{"4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"}, MaxPerCall: 5000}
		return c
	}
	c := good()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	plain := testConfig()
	if c.Digest() == plain.Digest() {
		t.Error("pay is not in the digest")
	}
	more := good()
	more.Pay.MaxPerCall = 5001
	if more.Digest() == c.Digest() {
		t.Error("max_per_call is not in the digest")
	}
	for name, c := range map[string]struct {
		mut  func(*agentapi.Pay)
		want string
	}{
		"no policy hash": {func(p *agentapi.Pay) { p.PolicySHA256 = agentapi.Digest{} }, "no signer policy hash"},
		"zero max":       {func(p *agentapi.Pay) { p.MaxPerCall = 0 }, "max_per_call is 0"},
		"no assets":      {func(p *agentapi.Pay) { p.Assets = nil }, "assets"},
		"too many":       {func(p *agentapi.Pay) { p.Assets = make([]string, 17) }, "assets"},
		"no network":     {func(p *agentapi.Pay) { p.Network = "" }, "network"},
		"http signer":    {func(p *agentapi.Pay) { p.Signer = "http://127.0.0.1:8446" }, "pay signer url"},
	} {
		cfg := good()
		c.mut(cfg.Pay)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// TestReceiptPayment: a tool call's payment is signed with the receipt: a
// changed, added or dropped transaction signature fails verification.
func TestReceiptPayment(t *testing.T) {
	_, d := newDevice(t)
	cfg := testConfig()
	r := &agentapi.Receipt{Version: 1, ConfigSHA256: cfg.Digest(), Conversation: strings.Repeat("ab", 16), InReplyTo: strings.Repeat("cd", 16), At: 5,
		Tools: []agentapi.ToolCall{{Tool: "paid_quote", ArgumentsSHA256: agentapi.Sum([]byte("{}")), ResultSHA256: agentapi.Sum([]byte("r")), Outcome: "ok", Payment: "5sig"},
			{Tool: "notes_list_notes", ArgumentsSHA256: agentapi.Sum([]byte("{}")), ResultSHA256: agentapi.Sum([]byte("r")), Outcome: "ok"}},
		ReplySHA256: agentapi.Sum([]byte("42"))}
	r.Sign(d)
	ev := &agentapi.Evidence{Config: cfg}
	if err := agentapi.VerifyReceipt(r, "42", &d.Cert, ev); err != nil {
		t.Fatalf("valid receipt refused: %v", err)
	}
	for name, mut := range map[string]func(*agentapi.Receipt){
		"changed": func(r *agentapi.Receipt) { r.Tools[0].Payment = "6sig" },
		"dropped": func(r *agentapi.Receipt) { r.Tools[0].Payment = "" },
		"moved":   func(r *agentapi.Receipt) { r.Tools[0].Payment, r.Tools[1].Payment = "", "5sig" },
	} {
		t.Run(name, func(t *testing.T) {
			tampered := *r
			tampered.Tools = append([]agentapi.ToolCall(nil), r.Tools...)
			mut(&tampered)
			wantCheck(t, agentapi.VerifyReceipt(&tampered, "42", &d.Cert, ev), agentapi.CheckSignature)
		})
	}
	long := *r
	long.Tools = append([]agentapi.ToolCall(nil), r.Tools...)
	long.Tools[0].Payment = strings.Repeat("x", 129)
	wantCheck(t, long.Validate(), agentapi.CheckMalformed)
}
