package gateway_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gagliardetto/solana-go"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/facilitator"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/internal/svmtest"
	"github.com/chatmcp/chatmcp/signer/signertest"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/chatmcp/chatmcp/x402pay"
)

// newPaidWorld makes a test mint (6 decimals) on s, a payer whose token
// account holds 1_000_000 of it, a payee with an empty token account (dst)
// and a fee payer funded with 1 SOL.
func newPaidWorld(t *testing.T, s *svmtest.SVM) (mint solana.PublicKey, payer ed25519.PrivateKey, payTo, dst solana.PublicKey, feePayer ed25519.PrivateKey) {
	t.Helper()
	mint, mintAuth := s.NewMint(t, 6)
	_, payer = svmtest.NewKey(t)
	payTo, _ = svmtest.NewKey(t)
	src := s.CreateATA(t, svmtest.PublicKey(payer), mint)
	dst = s.CreateATA(t, payTo, mint)
	s.MintTo(t, mint, mintAuth, src, 1_000_000)
	_, feePayer = svmtest.NewKey(t)
	s.Fund(t, svmtest.PublicKey(feePayer), 1_000_000_000)
	return mint, payer, payTo, dst, feePayer
}

// serveFacilitator serves fac over loopback HTTP until the test ends and
// returns its URL.
func serveFacilitator(t *testing.T, fac *facilitator.Facilitator) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: fac.Handler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

// TestPaidTool: a priced tool answers a call without payment with the
// MCP transport's payment-required result; a call with a payment in
// _meta is settled through a real facilitator on litesvm (TEST runtime)
// before the upstream sees it, answers the receipt in _meta, and its
// audit entry names the transaction; the same payment again, and a
// payment of another amount, are refused and the upstream is not called.
func TestPaidTool(t *testing.T) {
	s := svmtest.Start(t)
	mint, payer, payTo, dst, fp := newPaidWorld(t, s)
	h := paidGateway(t, s, mint, payTo, fp, nil)
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

// paidGateway is a gateway whose up_ech* tools cost 25000 of mint paid to
// payTo, settled by a facilitator on s with fee payer fp, with audit log
// al (nil: the default, on disk).
func paidGateway(t *testing.T, s *svmtest.SVM, mint, payTo solana.PublicKey, fp ed25519.PrivateKey, al gateway.AuditLog) *harness {
	t.Helper()
	fac, err := facilitator.New(context.Background(), storetest.SQLite(t), &facilitator.Options{
		Network: x402.SolanaLocal, RPC: s.RPC, FeePayer: facilitator.LocalKey{Key: fp}, Token: "fac-secret"})
	if err != nil {
		t.Fatal(err)
	}
	facURL := serveFacilitator(t, fac)
	tokenFile := filepath.Join(t.TempDir(), "fac.token")
	os.WriteFile(tokenFile, []byte("fac-secret\n"), 0o600)
	return newHarness(t, hopts{audit: al, upstream: func(*testUpstream) string {
		return `    prices:
      - tools: "ech*"
        price: {amount: "25000", asset: ` + mint.String() + `, pay_to: ` + payTo.String() + `, network: "` + x402.SolanaLocal + `"}
facilitator:
  url: ` + facURL + `
  token_file: ` + tokenFile + `
`
	}})
}

// With the audit log down, a paid call is refused before its payment is
// settled: no money moves that the log cannot record (fail closed), and
// the upstream never sees the call.
func TestPaidToolAuditDown(t *testing.T) {
	s := svmtest.Start(t)
	mint, payer, payTo, dst, fp := newPaidWorld(t, s)
	h := paidGateway(t, s, mint, payTo, fp, &failingAudit{})
	cs := h.mustConnect(h.mint("alice", "up_*").Token, nil)
	ctx := context.Background()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := x402.RequiredFromResult(res.StructuredContent, "")
	if err != nil || pr == nil {
		t.Fatalf("payment required: %v %v", pr, err)
	}
	p, err := x402.PayExact(&pr.Accepts[0], pr.Resource, svmtest.PublicKey(payer), x402.KeySigner(payer), 6, s.Blockhash(t))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := x402.ToMeta(p)
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_echo", Arguments: map[string]any{"text": "hi"}, Meta: mcp.Meta{x402.MetaPayment: m}})
	if err == nil || !strings.Contains(err.Error(), "the payment was not settled") {
		t.Fatalf("paid call with the audit log down: %v, want a refusal before settlement", err)
	}
	if got := s.Balance(t, dst); got != 0 {
		t.Fatalf("payTo holds %d with the audit log down, want 0", got)
	}
	if got := h.up.called(); len(got) != 0 {
		t.Fatalf("upstream saw %v", got)
	}
}

// TestPaidToolThroughSigners: an agent pays a paid tool from a key held by
// a chatmcp-signer whose token allows 0.05 test USDC a day, and the
// facilitator co-signs with a fee-payer-only signer; two calls at 0.025
// are paid and the money moves exactly twice; the third is over the
// token's budget: the agent's signer refuses naming token_budget, so no
// payment is made and the upstream never sees the call.
func TestPaidToolThroughSigners(t *testing.T) {
	s := svmtest.Start(t)
	mint, payerKey, payTo, dst, fpKey := newPaidWorld(t, s)
	policy := fmt.Sprintf("programs: [TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA, ComputeBudget111111111111111111111111111111, MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr]\nmints: [%s]\nrecipients: [%s]\nmax_per_tx: 1000000\nwindow: {period: 24h, max: 3000000}\nmax_compute_unit_price: 5000000\n", mint, payTo)
	ctx := context.Background()
	feeRemote, err := x402pay.NewRemote(ctx, signertest.Serve(t, fpKey, policy+"fee_payer_only: true\nmax_compute_unit_limit: 200000\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	fac, err := facilitator.New(ctx, storetest.SQLite(t), &facilitator.Options{Network: x402.SolanaLocal, RPC: s.RPC, FeePayer: feeRemote})
	if err != nil {
		t.Fatal(err)
	}
	facURL := serveFacilitator(t, fac)
	h := newHarness(t, hopts{upstream: func(*testUpstream) string {
		return `    prices:
      - tools: echo
        price: {amount: "25000", asset: ` + mint.String() + `, pay_to: ` + payTo.String() + `, network: "` + x402.SolanaLocal + `"}
facilitator:
  url: ` + facURL + `
`
	}})
	payRemote, err := x402pay.NewRemote(ctx, signertest.Serve(t, payerKey, policy, "50000/24h"))
	if err != nil {
		t.Fatal(err)
	}
	payer := &x402pay.Payer{RPC: s.RPC, Address: payRemote.Key, Signer: payRemote, Network: x402.SolanaLocal, Assets: []string{mint.String()}, MaxAmount: 100_000}
	cs := h.mustConnect(h.mint("agent", "up_*").Token, nil)
	call := func() (*mcp.CallToolResult, error) {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_echo", Arguments: map[string]any{"text": "hi"}})
		if err != nil {
			t.Fatal(err)
		}
		pr, err := x402.RequiredFromResult(res.StructuredContent, "")
		if err != nil || pr == nil {
			t.Fatalf("no payment required: %v", err)
		}
		p, err := payer.Pay(ctx, &pr.Accepts[0], pr.Resource)
		if err != nil {
			return nil, err
		}
		m, _ := x402.ToMeta(p)
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "up_echo", Arguments: map[string]any{"text": "hi"}, Meta: mcp.Meta{x402.MetaPayment: m}})
		if err != nil {
			t.Fatal(err)
		}
		return res, nil
	}
	for i := range 2 {
		res, err := call()
		if err != nil || res.IsError || callText(res) != "echo: hi" {
			t.Fatalf("paid call %d: %v %v", i, res, err)
		}
	}
	if got := s.Balance(t, dst); got != 50_000 {
		t.Fatalf("payTo holds %d after two paid calls, want 50000", got)
	}
	if _, err := call(); err == nil {
		t.Fatal("a payment over the token's budget was made")
	} else if r, _ := signerclient.ReasonOf(err); r != signerapi.RuleTokenBudget {
		t.Fatalf("over the budget: %v, want rule %s", err, signerapi.RuleTokenBudget)
	}
	if got := h.up.called(); len(got) != 2 {
		t.Errorf("upstream saw %v, want two calls", got)
	}
	if got := s.Balance(t, dst); got != 50_000 {
		t.Errorf("payTo holds %d, want 50000", got)
	}
}
