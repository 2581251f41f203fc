package gateway_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/facilitator"
	"github.com/chatmcp/chatmcp/internal/svmtest"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/x402"
)

// TestPaidTool: a priced tool answers a call without payment with the
// MCP transport's payment-required result; a call with a payment in
// _meta is settled through a real facilitator on litesvm (TEST runtime)
// before the upstream sees it, answers the receipt in _meta, and its
// audit entry names the transaction; the same payment again, and a
// payment of another amount, are refused and the upstream is not called.
func TestPaidTool(t *testing.T) {
	s := svmtest.Start(t)
	mint, mintAuth := s.NewMint(t, 6)
	_, payer := svmtest.NewKey(t)
	payTo, _ := svmtest.NewKey(t)
	src := s.CreateATA(t, svmtest.PublicKey(payer), mint)
	dst := s.CreateATA(t, payTo, mint)
	s.MintTo(t, mint, mintAuth, src, 1_000_000)
	_, fp := svmtest.NewKey(t)
	s.Fund(t, svmtest.PublicKey(fp), 1_000_000_000)
	fac, err := facilitator.New(context.Background(), storetest.SQLite(t), &facilitator.Options{
		Network: x402.SolanaLocal, RPC: s.RPC, FeePayer: facilitator.LocalKey{Key: fp}, Token: "fac-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: fac.Handler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	tokenFile := filepath.Join(t.TempDir(), "fac.token")
	os.WriteFile(tokenFile, []byte("fac-secret\n"), 0o600)

	h := newHarness(t, hopts{upstream: func(*testUpstream) string {
		return `    prices:
      - tools: "ech*"
        price: {amount: "25000", asset: ` + mint.String() + `, pay_to: ` + payTo.String() + `, network: "` + x402.SolanaLocal + `"}
facilitator:
  url: http://` + ln.Addr().String() + `
  token_file: ` + tokenFile + `
`
	}})
	cs := h.mustConnect(h.mint("alice", "up_*").Token, nil)
	ctx := context.Background()
	call := func(meta mcp.Meta) *mcp.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_echo", Arguments: map[string]any{"text": "hi"}, Meta: meta})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	required := func(res *mcp.CallToolResult) *x402.PaymentRequired {
		t.Helper()
		if !res.IsError {
			t.Fatalf("not a payment-required result: %s", callText(res))
		}
		pr, err := x402.RequiredFromResult(res.StructuredContent, "")
		if err != nil || pr == nil {
			t.Fatalf("payment required: %v, %v", pr, err)
		}
		text, err := x402.RequiredFromResult(nil, res.Content[0].(*mcp.TextContent).Text)
		if err != nil || text == nil || text.Error != pr.Error {
			t.Fatalf("content[0].text is not the same PaymentRequired: %v", err)
		}
		return pr
	}
	pr := required(call(nil))
	if pr.Accepts[0].Amount != "25000" || pr.Accepts[0].PayTo != payTo.String() || pr.Accepts[0].Extra.FeePayer != svmtest.PublicKey(fp).String() {
		t.Fatalf("requirements %+v", pr.Accepts[0])
	}
	if got := h.up.called(); len(got) != 0 {
		t.Fatalf("upstream saw %v before payment", got)
	}
	pay := func(req x402.PaymentRequirements) mcp.Meta {
		p, err := x402.PayExact(&req, pr.Resource, svmtest.PublicKey(payer), x402.KeySigner(payer), 6, s.Blockhash(t))
		if err != nil {
			t.Fatal(err)
		}
		m, _ := x402.ToMeta(p)
		return mcp.Meta{x402.MetaPayment: m}
	}
	paid := pay(pr.Accepts[0])
	res := call(paid)
	if res.IsError || callText(res) != "echo: hi" {
		t.Fatalf("paid call: %s", callText(res))
	}
	receipt, err := x402.SettleFromMeta(res.Meta)
	if err != nil || receipt == nil || !receipt.Success || receipt.Transaction == "" {
		t.Fatalf("receipt %+v, %v", receipt, err)
	}
	if got := s.Balance(t, dst); got != 25_000 {
		t.Fatalf("payTo holds %d, want 25000", got)
	}
	log, _ := os.ReadFile(filepath.Join(h.dataDir(), "audit.jsonl"))
	if !strings.Contains(string(log), `"payment":"`+receipt.Transaction+`"`) {
		t.Errorf("no audit entry names the transaction %s", receipt.Transaction)
	}
	// The same payment again.
	if pr := required(call(paid)); !strings.Contains(pr.Error, x402.ReasonDuplicateSettlement) {
		t.Errorf("replay: %q", pr.Error)
	}
	// A payment of another amount.
	cheap := pr.Accepts[0]
	cheap.Amount = "1"
	if pr := required(call(pay(cheap))); !strings.Contains(pr.Error, "not among") {
		t.Errorf("underpayment: %q", pr.Error)
	}
	if got := h.up.called(); len(got) != 1 {
		t.Errorf("upstream saw %v, want one call", got)
	}
	if got := s.Balance(t, dst); got != 25_000 {
		t.Errorf("payTo holds %d after refusals, want 25000", got)
	}
}
