package facilitator_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chatmcp/chatmcp/facilitator"
	"github.com/chatmcp/chatmcp/internal/svmtest"
	"github.com/chatmcp/chatmcp/signer/signertest"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/chatmcp/chatmcp/x402pay"
	"github.com/gagliardetto/solana-go"
)

// TestThroughSigners: the payer's key and the facilitator's fee-payer key
// each live in a chatmcp-signer. The payer's signer (a payment policy, a
// token with a budget of 0.1 test USDC a day) signs the transfer; the
// facilitator's signer (fee_payer_only) co-signs it; the money moves once.
// A second payment over the token's budget is refused by the payer's
// signer naming token_budget, and a transaction making the fee payer the
// transfer's authority is refused by the fee payer's signer naming
// fee_payer, even asked directly.
func TestThroughSigners(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	policy := func(extra string) string {
		return fmt.Sprintf(`programs: [TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA, ComputeBudget111111111111111111111111111111, MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr]
mints: [%s]
recipients: [%s]
max_per_tx: 1000000
window: {period: 24h, max: 3000000}
max_compute_unit_price: 5000000
%s`, w.mint, w.payTo, extra)
	}
	payerSigner := signertest.Serve(t, w.payer, policy(""), "100000/24h")
	feeSigner := signertest.Serve(t, w.feePayer, policy("fee_payer_only: true\nmax_compute_unit_limit: 200000\n"), "")
	feeRemote, err := x402pay.NewRemote(ctx, feeSigner)
	if err != nil {
		t.Fatal(err)
	}
	fac, err := facilitator.New(ctx, storetest.SQLite(t), &facilitator.Options{Network: x402.SolanaLocal, RPC: w.svm.RPC, FeePayer: feeRemote})
	if err != nil {
		t.Fatal(err)
	}
	payRemote, err := x402pay.NewRemote(ctx, payerSigner)
	if err != nil {
		t.Fatal(err)
	}
	payer := &x402pay.Payer{RPC: w.svm.RPC, Address: payRemote.Key, Signer: payRemote, Network: x402.SolanaLocal, Assets: []string{w.mint.String()}, MaxAmount: 1_000_000}
	req := w.req("60000")
	before := w.balances(t)
	p, err := payer.Pay(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := fac.Settle(ctx, p, req); !s.Success {
		t.Fatalf("settle: %s: %s", s.ErrorReason, s.ErrorMessage)
	}
	if after := w.balances(t); after[0] != before[0]-60_000 || after[1] != before[1]+60_000 {
		t.Fatalf("balances %v -> %v", before, after)
	}
	// The budget: 60000 of 100000 spent.
	if _, err := payer.Pay(ctx, req, nil); !isRule(err, signerapi.RuleTokenBudget) {
		t.Errorf("a payment over the token's budget: %v", err)
	}
	// The fee payer's own policy, asked directly with a trick.
	fp := svmtest.PublicKey(w.feePayer)
	trick, err := solana.NewTransaction([]solana.Instruction{computeLimit(20000), computePrice(1),
		transferChecked(w.feePayerATA, w.mint, w.payToATA, fp, 1000), memo("x")}, w.svm.Blockhash(t), solana.TransactionPayer(fp))
	if err != nil {
		t.Fatal(err)
	}
	trick.Signatures = make([]solana.Signature, trick.Message.Header.NumRequiredSignatures)
	if err := feeRemote.Sign(ctx, trick); !isRule(err, signerapi.RuleFeePayer) {
		t.Errorf("the fee payer's signer signed its own transfer: %v", err)
	}
}

func isRule(err error, rule string) bool {
	r, ok := signerclient.ReasonOf(err)
	return ok && r == rule
}
