package facilitator_test

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/facilitator"
	"github.com/chatmcp/chatmcp/internal/svmtest"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/gagliardetto/solana-go"
)

// world is a litesvm runtime (TEST runtime) with a test USDC (6
// decimals), a payer holding 10 of it, a recipient, and a facilitator
// served over loopback with its fee payer funded.
type world struct {
	svm         *svmtest.SVM
	mint        solana.PublicKey
	mintAuth    ed25519.PrivateKey
	payer       ed25519.PrivateKey
	payerATA    solana.PublicKey
	payTo       solana.PublicKey
	payToATA    solana.PublicKey
	feePayer    ed25519.PrivateKey
	feePayerATA solana.PublicKey
	fac         *facilitator.Facilitator
	client      *x402.FacilitatorClient
}

var (
	svmOnce sync.Once
	svmRT   *svmtest.SVM
)

// runtime shares one litesvm process among this package's tests; each
// test makes its own mint and keys.
func runtime(t *testing.T) *svmtest.SVM {
	svmOnce.Do(func() { svmRT = svmtest.Start(&onceT{t}) })
	if svmRT == nil {
		t.Fatal("litesvm did not start")
	}
	return svmRT
}

// onceT lets the shared runtime outlive the first test that starts it:
// its cleanup runs when the process exits (the server exits when its
// stdin closes).
type onceT struct{ *testing.T }

func (o *onceT) Cleanup(func()) {}

func newWorld(t *testing.T, db *store.DB) *world {
	s := runtime(t)
	w := &world{svm: s}
	w.mint, w.mintAuth = s.NewMint(t, 6)
	_, w.payer = svmtest.NewKey(t)
	w.payTo, _ = svmtest.NewKey(t)
	_, w.feePayer = svmtest.NewKey(t)
	s.Fund(t, svmtest.PublicKey(w.feePayer), 1_000_000_000)
	w.payerATA = s.CreateATA(t, svmtest.PublicKey(w.payer), w.mint)
	w.payToATA = s.CreateATA(t, w.payTo, w.mint)
	w.feePayerATA = s.CreateATA(t, svmtest.PublicKey(w.feePayer), w.mint)
	s.MintTo(t, w.mint, w.mintAuth, w.payerATA, 10_000_000)
	s.MintTo(t, w.mint, w.mintAuth, w.feePayerATA, 10_000_000)
	if db == nil {
		db = storetest.SQLite(t)
	}
	fac, err := facilitator.New(context.Background(), db, &facilitator.Options{
		Network: x402.SolanaLocal, RPC: s.RPC, FeePayer: facilitator.LocalKey{Key: w.feePayer}, Token: "fac-token",
	})
	if err != nil {
		t.Fatal(err)
	}
	w.fac = fac
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fac.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	w.client = &x402.FacilitatorClient{URL: "http://" + ln.Addr().String(), Token: "fac-token"}
	return w
}

func (w *world) req(amount string) *x402.PaymentRequirements {
	return &x402.PaymentRequirements{Scheme: x402.SchemeExact, Network: x402.SolanaLocal, Amount: amount,
		Asset: w.mint.String(), PayTo: w.payTo.String(), MaxTimeoutSeconds: 60,
		Extra: &x402.Extra{FeePayer: svmtest.PublicKey(w.feePayer).String()}}
}

func (w *world) pay(t *testing.T, req *x402.PaymentRequirements) *x402.PaymentPayload {
	t.Helper()
	p, err := x402.PayExact(req, &x402.ResourceInfo{URL: "mcp://tool/test"}, svmtest.PublicKey(w.payer), x402.KeySigner(w.payer), 6, w.svm.Blockhash(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) balances(t *testing.T) [3]uint64 {
	return [3]uint64{w.svm.Balance(t, w.payerATA), w.svm.Balance(t, w.payToATA), w.svm.Balance(t, w.feePayerATA)}
}

// TestSettleExactlyOnce pays 1.5 test USDC through the facilitator's HTTP
// API on litesvm, checks the balances moved exactly once, and replays the
// same payment: verify and settle both refuse it as duplicate_settlement
// and nothing moves again.
func TestSettleExactlyOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, db)
		ctx := context.Background()
		req := w.req("1500000")
		p := w.pay(t, req)
		before := w.balances(t)
		v, err := w.client.Verify(ctx, p, req)
		if err != nil || !v.IsValid {
			t.Fatalf("verify: %+v, %v", v, err)
		}
		if v.Payer != svmtest.PublicKey(w.payer).String() {
			t.Errorf("payer %s", v.Payer)
		}
		s, err := w.client.Settle(ctx, p, req)
		if err != nil || !s.Success {
			t.Fatalf("settle: %+v, %v", s, err)
		}
		after := w.balances(t)
		if after[0] != before[0]-1_500_000 || after[1] != before[1]+1_500_000 || after[2] != before[2] {
			t.Fatalf("balances %v -> %v, want payer -1500000 and payTo +1500000", before, after)
		}
		st, err := w.fac.Ledger().Lookup(ctx, s.Transaction)
		if err != nil || st == nil || st.State != facilitator.StateSettled {
			t.Fatalf("ledger row for %s: %+v, %v", s.Transaction, st, err)
		}
		// The replay.
		if v, _ := w.client.Verify(ctx, p, req); v.IsValid || v.InvalidReason != x402.ReasonDuplicateSettlement {
			t.Errorf("verify of a replay: %+v", v)
		}
		if s2, _ := w.client.Settle(ctx, p, req); s2.Success || s2.ErrorReason != x402.ReasonDuplicateSettlement {
			t.Errorf("settle of a replay: %+v", s2)
		}
		if got := w.balances(t); got != after {
			t.Errorf("balances moved on a replay: %v -> %v", after, got)
		}
	})
}

// TestSettleConcurrent races eight settlements of one payment: exactly
// one succeeds, the others are duplicate_settlement, the money moves once.
func TestSettleConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) { settleConcurrent(t, db) })
}

func settleConcurrent(t *testing.T, db *store.DB) {
	w := newWorld(t, db)
	req := w.req("250000")
	p := w.pay(t, req)
	before := w.balances(t)
	var wg sync.WaitGroup
	results := make([]*x402.SettleResponse, 8)
	for i := range results {
		wg.Go(func() {
			r, err := w.client.Settle(context.Background(), p, req)
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = r
		})
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		if r == nil {
			continue
		}
		if r.Success {
			ok++
		} else if r.ErrorReason != x402.ReasonDuplicateSettlement {
			t.Errorf("a concurrent settlement failed with %s: %s", r.ErrorReason, r.ErrorMessage)
		}
	}
	if ok != 1 {
		t.Fatalf("%d settlements succeeded, want exactly 1", ok)
	}
	if after := w.balances(t); after[0] != before[0]-250_000 || after[1] != before[1]+250_000 {
		t.Fatalf("balances %v -> %v", before, after)
	}
}

// TestPaymentIdentifier: the same identifier on another payment is a
// conflict; the ledger keys by identifier as well as by transaction.
func TestPaymentIdentifier(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	req := w.req("1000")
	p1 := w.pay(t, req)
	if err := x402.WithPaymentID(p1, "pay_0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if s, _ := w.client.Settle(ctx, p1, req); !s.Success {
		t.Fatalf("settle: %+v", s)
	}
	p2 := w.pay(t, req)
	x402.WithPaymentID(p2, "pay_0123456789abcdef")
	if s, _ := w.client.Settle(ctx, p2, req); s.Success || s.ErrorReason != x402.ReasonPaymentIDConflict {
		t.Fatalf("second payment with the same identifier: %+v", s)
	}
}

// TestUnauthorized: without the facilitator's token nothing is verified.
func TestUnauthorized(t *testing.T) {
	w := newWorld(t, nil)
	c := *w.client
	c.Token = "wrong"
	req := w.req("1000")
	if _, err := c.Verify(context.Background(), w.pay(t, req), req); err == nil {
		t.Fatal("verify without the token answered")
	}
	sup, err := c.Supported(context.Background())
	if err != nil || len(sup.Kinds) != 1 || sup.Kinds[0].Extra.FeePayer != svmtest.PublicKey(w.feePayer).String() {
		t.Fatalf("supported: %+v, %v", sup, err)
	}
}

// ix is an instruction for hand-built transactions.
func ix(prog solana.PublicKey, data []byte, metas ...*solana.AccountMeta) solana.Instruction {
	return solana.NewInstruction(prog, metas, data)
}

func computeLimit(n uint32) solana.Instruction {
	return ix(solana.ComputeBudget, binary.LittleEndian.AppendUint32([]byte{2}, n))
}
func computePrice(n uint64) solana.Instruction {
	return ix(solana.ComputeBudget, binary.LittleEndian.AppendUint64([]byte{3}, n))
}
func transferChecked(src, mint, dst, auth solana.PublicKey, amount uint64) solana.Instruction {
	return ix(solana.TokenProgramID, append(binary.LittleEndian.AppendUint64([]byte{12}, amount), 6),
		solana.Meta(src).WRITE(), solana.Meta(mint), solana.Meta(dst).WRITE(), solana.Meta(auth).SIGNER())
}
func memo(s string) solana.Instruction { return ix(solana.MemoProgramID, []byte(s)) }

// handBuilt signs ixs (fee payer first) with the given keys, leaving the
// fee payer's signature empty, and wraps them in a payment for req.
func (w *world) handBuilt(t *testing.T, req *x402.PaymentRequirements, ixs []solana.Instruction, signers ...ed25519.PrivateKey) *x402.PaymentPayload {
	t.Helper()
	tx, err := solana.NewTransaction(ixs, w.svm.Blockhash(t), solana.TransactionPayer(svmtest.PublicKey(w.feePayer)))
	if err != nil {
		t.Fatal(err)
	}
	tx.Signatures = make([]solana.Signature, tx.Message.Header.NumRequiredSignatures)
	for _, k := range signers {
		if err := x402.SignAs(tx, svmtest.PublicKey(k), x402.KeySigner(k)); err != nil {
			t.Fatal(err)
		}
	}
	b64, err := x402.EncodeTransaction(tx)
	if err != nil {
		t.Fatal(err)
	}
	return &x402.PaymentPayload{X402Version: x402.Version, Accepted: *req, Payload: x402.ExactSVMPayload{Transaction: b64}}
}

// TestRefusals reaches each rule through /verify and /settle on litesvm:
// each payment is refused with the rule named and no balance moves.
func TestRefusals(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	payer := svmtest.PublicKey(w.payer)
	fp := svmtest.PublicKey(w.feePayer)
	otherMint, otherAuth := w.svm.NewMint(t, 6)
	otherATA := w.svm.CreateATA(t, payer, otherMint)
	w.svm.MintTo(t, otherMint, otherAuth, otherATA, 5_000_000)
	otherPayToATA := w.svm.CreateATA(t, w.payTo, otherMint)
	stranger, _ := svmtest.NewKey(t)
	strangerATA := w.svm.CreateATA(t, stranger, w.mint)
	std := func(amount uint64) []solana.Instruction {
		return []solana.Instruction{computeLimit(20000), computePrice(1), transferChecked(w.payerATA, w.mint, w.payToATA, payer, amount), memo("0123456789abcdef0123456789abcdef")}
	}
	cases := []struct {
		name   string
		reason string
		make   func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements)
	}{
		{"wrong amount", x402.ReasonAmountMismatch, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000000")
			return w.handBuilt(t, req, std(999_999), w.payer), req
		}},
		{"more than the amount", x402.ReasonAmountMismatch, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000000")
			return w.handBuilt(t, req, std(1_000_001), w.payer), req
		}},
		{"wrong mint", x402.ReasonMintMismatch, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000")
			ixs := std(1000)
			ixs[2] = transferChecked(otherATA, otherMint, otherPayToATA, payer, 1000)
			return w.handBuilt(t, req, ixs, w.payer), req
		}},
		{"wrong destination", x402.ReasonRecipientMismatch, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000")
			ixs := std(1000)
			ixs[2] = transferChecked(w.payerATA, w.mint, strangerATA, payer, 1000)
			return w.handBuilt(t, req, ixs, w.payer), req
		}},
		{"fee payer as the authority of its own tokens", x402.ReasonFeePayerTransferringFunds, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000")
			ixs := std(1000)
			ixs[2] = transferChecked(w.feePayerATA, w.mint, w.payToATA, fp, 1000)
			return w.handBuilt(t, req, ixs), req
		}},
		{"fee payer hidden in a memo's accounts", x402.ReasonFeePayerInInstruction, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000")
			ixs := std(1000)
			ixs[3] = ix(solana.MemoProgramID, []byte("x"), solana.Meta(fp).SIGNER())
			return w.handBuilt(t, req, ixs, w.payer), req
		}},
		{"a fee payer that is not this facilitator's", x402.ReasonFeePayerNotManaged, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000")
			req.Extra.FeePayer = stranger.String()
			p := w.pay(t, w.req("1000"))
			p.Accepted = *req
			return p, req
		}},
		{"compute price above the cap", x402.ReasonComputePriceTooHigh, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000")
			ixs := std(1000)
			ixs[1] = computePrice(x402.MaxComputeUnitPrice + 1)
			return w.handBuilt(t, req, ixs, w.payer), req
		}},
		{"instructions out of order", x402.ReasonComputeLimit, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000")
			ixs := std(1000)
			ixs[0], ixs[1] = ixs[1], ixs[0]
			return w.handBuilt(t, req, ixs, w.payer), req
		}},
		{"an extra SOL transfer", x402.ReasonUnknownInstruction, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000")
			sys := ix(solana.SystemProgramID, binary.LittleEndian.AppendUint64([]byte{2, 0, 0, 0}, 1), solana.Meta(payer).WRITE().SIGNER(), solana.Meta(stranger).WRITE())
			return w.handBuilt(t, req, append(std(1000), sys), w.payer), req
		}},
		{"no memo", x402.ReasonMemoMissing, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000")
			return w.handBuilt(t, req, std(1000)[:3], w.payer), req
		}},
		{"memo other than extra.memo", x402.ReasonMemoMismatch, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000")
			req.Extra.Memo = "invoice-42"
			return w.handBuilt(t, req, std(1000), w.payer), req
		}},
		{"not signed by the payer", x402.ReasonPayerSignature, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("1000")
			return w.handBuilt(t, req, std(1000)), req
		}},
		{"more than the payer holds", x402.ReasonInsufficientFunds, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			req := w.req("900000000")
			return w.handBuilt(t, req, std(900_000_000), w.payer), req
		}},
		{"requirements other than the payment accepted", x402.ReasonRequirementsMismatch, func(t *testing.T) (*x402.PaymentPayload, *x402.PaymentRequirements) {
			p := w.pay(t, w.req("1000"))
			return p, w.req("2000")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, req := c.make(t)
			before := w.balances(t)
			v, err := w.client.Verify(ctx, p, req)
			if err != nil {
				t.Fatal(err)
			}
			if v.IsValid || v.InvalidReason != c.reason {
				t.Errorf("verify: %s (%s), want %s", v.InvalidReason, v.InvalidMessage, c.reason)
			}
			s, err := w.client.Settle(ctx, p, req)
			if err != nil {
				t.Fatal(err)
			}
			if s.Success || s.ErrorReason != c.reason {
				t.Errorf("settle: %s (%s), want %s", s.ErrorReason, s.ErrorMessage, c.reason)
			}
			if got := w.balances(t); got != before {
				t.Errorf("balances moved: %v -> %v", before, got)
			}
		})
	}
	// An expired blockhash last: it changes the runtime's blockhash.
	t.Run("expired blockhash", func(t *testing.T) {
		req := w.req("1000")
		p := w.pay(t, req)
		w.svm.ExpireBlockhash(t)
		before := w.balances(t)
		if s, _ := w.client.Settle(ctx, p, req); s.Success || s.ErrorReason != x402.ReasonBlockhashExpired {
			t.Errorf("settle: %s (%s), want %s", s.ErrorReason, s.ErrorMessage, x402.ReasonBlockhashExpired)
		}
		if got := w.balances(t); got != before {
			t.Errorf("balances moved: %v -> %v", before, got)
		}
	})
}

// TestMalformedRequests: bodies that are not facilitator requests are 400
// invalid_payload, and change nothing.
func TestMalformedRequests(t *testing.T) {
	w := newWorld(t, nil)
	for name, body := range map[string]string{
		"not JSON":       "{",
		"unknown member": `{"paymentPayload":{},"paymentRequirements":{},"extra":1}`,
		"trailing data":  `{"paymentPayload":{},"paymentRequirements":{}} x`,
		"too large":      `{"x":"` + strings.Repeat("a", x402.MaxBody) + `"}`,
		"empty payment":  `{"paymentPayload":{},"paymentRequirements":{}}`,
	} {
		for _, path := range []string{x402.PathVerify, x402.PathSettle} {
			req, _ := http.NewRequest("POST", w.client.URL+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer fac-token")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if name == "empty payment" {
				// A well-formed request whose payment is empty is a refusal
				// naming the check, in the body.
				if !strings.Contains(string(b), `"invalid_x402_version"`) && !strings.Contains(string(b), `"invalid_payload"`) {
					t.Errorf("%s %s: %d %s", name, path, resp.StatusCode, b)
				}
				continue
			}
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"invalid_payload"`) {
				t.Errorf("%s %s: %d %s", name, path, resp.StatusCode, b)
			}
		}
	}
}

// TestUnknownOutcomeReconciled: a settlement whose confirmation is not
// seen in time answers a failure and leaves its row pending (nothing can
// settle it twice); the transaction did land, and the next settlements of
// the same payment, racing, ask the chain: exactly one answers success,
// the others duplicate_settlement.
func TestUnknownOutcomeReconciled(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	impatient, err := facilitator.New(ctx, storetest.SQLite(t), &facilitator.Options{Network: x402.SolanaLocal, RPC: w.svm.RPC,
		FeePayer: facilitator.LocalKey{Key: w.feePayer}, ConfirmTimeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	req := w.req("7000")
	p := w.pay(t, req)
	before := w.balances(t)
	if s := impatient.Settle(ctx, p, req); s.Success || s.ErrorReason != x402.ReasonTransactionConfirmationFail || s.Transaction == "" {
		t.Fatalf("first settlement: %+v", s)
	}
	if after := w.balances(t); after[1] != before[1]+7000 {
		t.Fatalf("the transaction did not land: %v -> %v", before, after)
	}
	results := make(chan *x402.SettleResponse, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { results <- impatient.Settle(ctx, p, req) })
	}
	wg.Wait()
	close(results)
	ok := 0
	for r := range results {
		switch {
		case r.Success:
			ok++
		case r.ErrorReason != x402.ReasonDuplicateSettlement:
			t.Errorf("a retry answered %s: %s", r.ErrorReason, r.ErrorMessage)
		}
	}
	if ok != 1 {
		t.Fatalf("%d retries answered success, want exactly 1", ok)
	}
	if after := w.balances(t); after[1] != before[1]+7000 {
		t.Fatalf("balances %v -> %v, want the payment once", before, after)
	}
}
