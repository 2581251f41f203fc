// Package facilitator is ChatMCP's x402 facilitator for the `exact`
// scheme on Solana: it verifies a payment by every rule of the spec (in
// package x402) and against the chain (accounts, balance, blockhash, by
// simulation), co-signs it with its fee-payer key and settles it exactly
// once through a durable ledger (SQLite or PostgreSQL), and serves the
// spec's /verify, /settle and /supported.
package facilitator

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/solrpc"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/gagliardetto/solana-go"
	"github.com/go-json-experiment/json"
)

// Options configure a Facilitator. The zero value of each optional field
// is documented.
type Options struct {
	// Network is the CAIP-2 id of the cluster RPC reaches. Required.
	Network string
	// RPC is the Solana RPC endpoint. Required. It is trusted for
	// liveness and for what it reports of the chain, never with a key.
	RPC *solrpc.Client
	// FeePayer co-signs. Required.
	FeePayer FeePayer
	// Verify tightens the spec's bounds. If nil, the defaults of
	// x402.VerifyOptions.
	Verify *x402.VerifyOptions
	// ConfirmTimeout bounds the wait for a sent transaction to be
	// confirmed. If zero, 60 seconds.
	ConfirmTimeout time.Duration
	// PollInterval is how often the status is polled. If zero, 250 ms.
	PollInterval time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Logger logs settlements and internal errors. If nil, discarded.
	Logger *slog.Logger
	// Token, if set, is the bearer token /verify and /settle require (a
	// public facilitator spends its fee payer's SOL on every settlement).
	Token string
}

// Facilitator verifies and settles payments.
type Facilitator struct {
	o      Options
	ledger *Ledger
}

// New migrates db (the ledger's table) and returns a Facilitator.
func New(ctx context.Context, db *store.DB, opts *Options) (*Facilitator, error) {
	if opts == nil || opts.RPC == nil || opts.FeePayer == nil {
		return nil, errors.New("facilitator: Options.RPC and Options.FeePayer are required")
	}
	o := *opts
	n, err := x402.ParseNetwork(o.Network)
	if err != nil || !n.IsSolana() {
		return nil, fmt.Errorf("facilitator: Options.Network %q is not a Solana CAIP-2 id", o.Network)
	}
	if o.ConfirmTimeout == 0 {
		o.ConfirmTimeout = 60 * time.Second
	}
	if o.PollInterval == 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := db.Migrate(ctx, "facilitator", migrations); err != nil {
		return nil, fmt.Errorf("facilitator: %w", err)
	}
	return &Facilitator{o: o, ledger: &Ledger{db: db, now: o.Now}}, nil
}

// Ledger is the settlement ledger.
func (f *Facilitator) Ledger() *Ledger { return f.ledger }

// Supported is the answer of GET /supported.
func (f *Facilitator) Supported() *x402.SupportedResponse {
	fp := f.o.FeePayer.PublicKey().String()
	return &x402.SupportedResponse{
		Kinds:      []x402.SupportedKind{{X402Version: x402.Version, Scheme: x402.SchemeExact, Network: f.o.Network, Extra: &x402.Extra{FeePayer: fp}}},
		Extensions: []string{x402.ExtPaymentIdentifier},
		Signers:    map[string][]string{"solana:*": {fp}},
	}
}

// checked is a payment that passed verification.
type checked struct {
	tx          *solana.Transaction
	t           *x402.ExactTransfer
	msgHash     []byte
	payloadHash []byte
	paymentID   string
}

// check runs every rule: the spec's, the ledger's and the chain's. It
// returns a *x402.Refusal or an internal error.
func (f *Facilitator) check(ctx context.Context, p *x402.PaymentPayload, req *x402.PaymentRequirements) (*checked, error) {
	if p.X402Version != x402.Version {
		return nil, &x402.Refusal{Reason: x402.ReasonInvalidVersion, Msg: fmt.Sprintf("x402Version %d, this facilitator speaks %d", p.X402Version, x402.Version)}
	}
	if err := p.Validate(); err != nil {
		return nil, &x402.Refusal{Reason: x402.ReasonInvalidPayload, Msg: err.Error()}
	}
	if req.Network != f.o.Network {
		return nil, &x402.Refusal{Reason: x402.ReasonInvalidNetwork, Msg: fmt.Sprintf("network %s; this facilitator settles on %s", req.Network, f.o.Network)}
	}
	t, err := x402.VerifyExactSVM(p, req, []solana.PublicKey{f.o.FeePayer.PublicKey()}, f.o.Verify)
	if err != nil {
		return nil, err
	}
	tx, _ := x402.DecodeTransaction(p.Payload.Transaction) // accepted above
	paymentID, _ := x402.PaymentID(p)
	c := &checked{tx: tx, t: t, paymentID: paymentID}
	mh := sha256.Sum256(t.Message)
	c.msgHash = mh[:]
	acc, _ := json.Marshal(&p.Accepted)
	ph := sha256.New()
	ph.Write([]byte(p.Payload.Transaction))
	ph.Write([]byte{0})
	ph.Write(acc)
	c.payloadHash = ph.Sum(nil)
	payer := t.Payer.String()
	// The duplicate rule, before any chain call.
	ex, err := f.ledger.find(ctx, c.msgHash, paymentID)
	if err != nil {
		return nil, err
	}
	if ex != nil {
		return nil, duplicate(ex, c, payer)
	}
	// Rule 5: account existence; then the rest (balance, blockhash,
	// signatures, programs) by simulation.
	for _, a := range []struct {
		key    solana.PublicKey
		reason string
		what   string
	}{{t.Source, x402.ReasonSourceMissing, "source"}, {t.Destination, x402.ReasonDestinationMissing, "destination"}} {
		acc, err := f.o.RPC.AccountInfo(ctx, a.key.String())
		if errors.Is(err, solrpc.ErrNotFound) {
			return nil, &x402.Refusal{Reason: a.reason, Msg: fmt.Sprintf("the %s token account %s does not exist", a.what, a.key), Payer: payer}
		}
		if err != nil {
			return nil, err
		}
		if acc.Owner != t.TokenProgram.String() {
			return nil, &x402.Refusal{Reason: a.reason, Msg: fmt.Sprintf("the %s %s is not a token account", a.what, a.key), Payer: payer}
		}
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		return nil, err
	}
	// The fee payer has not signed yet; the payer's signature was checked.
	sim, err := f.o.RPC.SimulateTransaction(ctx, raw, false)
	if err != nil {
		return nil, err
	}
	if sim.Failed() {
		return nil, simulationRefusal(string(sim.Err), payer)
	}
	return c, nil
}

// duplicate is the refusal of a payment the ledger already holds: the
// spec's duplicate_settlement for the same transaction (ChatMCP answers it
// durably, not from a 120-second cache), or a payment-identifier conflict
// when the identifier was used for another payment.
func duplicate(ex *Settlement, c *checked, payer string) *x402.Refusal {
	if c.paymentID != "" && ex.PaymentID == c.paymentID && string(ex.MessageHash) != string(c.msgHash) {
		return &x402.Refusal{Reason: x402.ReasonPaymentIDConflict, Msg: "payment identifier already used for another payment", Payer: payer}
	}
	msg := "this transaction was already settled"
	switch ex.State {
	case StatePending:
		msg = "this transaction is being settled"
	case StateFailed:
		msg = "this transaction already failed on chain"
	}
	if ex.Signature != "" {
		msg += " (" + ex.Signature + ")"
	}
	return &x402.Refusal{Reason: x402.ReasonDuplicateSettlement, Msg: msg, Payer: payer}
}

// simulationRefusal names the rule a failed simulation broke, from the
// error the RPC reported.
func simulationRefusal(e, payer string) *x402.Refusal {
	r := &x402.Refusal{Reason: x402.ReasonSimulationFailed, Msg: "simulation failed: " + truncate(e), Payer: payer}
	switch {
	case strings.Contains(e, "BlockhashNotFound"):
		r.Reason, r.Msg = x402.ReasonBlockhashExpired, "the transaction's blockhash is not recent (expired or unknown)"
	case strings.Contains(e, "Custom(1)") || strings.Contains(e, `"Custom":1`):
		// SPL Token error 1 is InsufficientFunds.
		r.Reason, r.Msg = x402.ReasonInsufficientFunds, "the payer's token account holds less than the amount"
	case strings.Contains(e, "InsufficientFundsForFee"):
		r.Msg = "the fee payer cannot pay the fee"
	}
	return r
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// Verify answers POST /verify.
func (f *Facilitator) Verify(ctx context.Context, p *x402.PaymentPayload, req *x402.PaymentRequirements) *x402.VerifyResponse {
	c, err := f.check(ctx, p, req)
	if err != nil {
		r := f.refusal(err, x402.ReasonUnexpectedVerify)
		return &x402.VerifyResponse{InvalidReason: r.Reason, InvalidMessage: r.Msg, Payer: r.Payer}
	}
	return &x402.VerifyResponse{IsValid: true, Payer: c.t.Payer.String()}
}

func (f *Facilitator) refusal(err error, internal string) *x402.Refusal {
	var r *x402.Refusal
	if errors.As(err, &r) {
		return r
	}
	f.o.Logger.Error("facilitator: internal error", "err", err)
	return &x402.Refusal{Reason: internal, Msg: "internal error; see the facilitator's log"}
}

// Settle answers POST /settle: it verifies again, reserves the payment in
// the ledger (the one step two concurrent settlements cannot both pass),
// co-signs, sends, waits for confirmation and records the outcome.
func (f *Facilitator) Settle(ctx context.Context, p *x402.PaymentPayload, req *x402.PaymentRequirements) *x402.SettleResponse {
	fail := func(err error, payer, sig string) *x402.SettleResponse {
		r := f.refusal(err, x402.ReasonUnexpectedSettle)
		if r.Payer == "" {
			r.Payer = payer
		}
		return &x402.SettleResponse{ErrorReason: r.Reason, ErrorMessage: r.Msg, Payer: r.Payer, Transaction: sig, Network: req.Network}
	}
	c, err := f.check(ctx, p, req)
	var r *x402.Refusal
	if errors.As(err, &r) && r.Reason == x402.ReasonDuplicateSettlement {
		if sr := f.reconcile(ctx, p, req); sr != nil {
			return sr
		}
	}
	if err != nil {
		return fail(err, "", "")
	}
	t := c.t
	payer := t.Payer.String()
	row := &Settlement{MessageHash: c.msgHash, PaymentID: c.paymentID, PayloadHash: c.payloadHash, Network: req.Network,
		Payer: payer, PayTo: req.PayTo, Asset: req.Asset, Amount: req.Amount}
	if err := f.ledger.reserve(ctx, row); err != nil {
		var taken *errTaken
		if errors.As(err, &taken) {
			return fail(duplicate(taken.existing, c, payer), payer, "")
		}
		return fail(err, payer, "")
	}
	// From here the row is ours. Until the transaction may have reached
	// the chain, a failure releases it.
	if err := f.o.FeePayer.Sign(ctx, c.tx); err != nil {
		f.releaseOrLog(c.msgHash)
		return fail(&x402.Refusal{Reason: x402.ReasonSigningFailed, Msg: "the fee payer refused: " + truncate(err.Error())}, payer, "")
	}
	sig := c.tx.Signatures[0].String()
	if err := f.ledger.setSignature(ctx, c.msgHash, sig); err != nil {
		f.releaseOrLog(c.msgHash)
		return fail(err, payer, "")
	}
	raw, err := c.tx.MarshalBinary()
	if err != nil {
		f.releaseOrLog(c.msgHash)
		return fail(err, payer, "")
	}
	if _, err := f.o.RPC.SendTransaction(ctx, raw); err != nil {
		var rpcErr *solrpc.Error
		if errors.As(err, &rpcErr) && !strings.Contains(rpcErr.Message, "AlreadyProcessed") {
			// Refused in preflight: it never reached the chain.
			f.releaseOrLog(c.msgHash)
			r := simulationRefusal(rpcErr.Message+" "+string(rpcErr.Data), payer)
			if r.Reason == x402.ReasonSimulationFailed {
				r.Reason = x402.ReasonTransactionFailed
			}
			return fail(r, payer, "")
		}
		// Unknown outcome: the row stays pending, so nobody settles it
		// again; its status can be looked up by signature.
		f.o.Logger.Warn("facilitator: send outcome unknown", "signature", sig, "err", err)
		return fail(&x402.Refusal{Reason: x402.ReasonTransactionConfirmationFail, Msg: "the transaction's outcome is unknown"}, payer, sig)
	}
	st, err := f.confirm(ctx, sig)
	if err != nil {
		f.o.Logger.Warn("facilitator: confirmation", "signature", sig, "err", err)
		return fail(&x402.Refusal{Reason: x402.ReasonTransactionConfirmationFail, Msg: "not confirmed: " + truncate(err.Error())}, payer, sig)
	}
	return f.record(ctx, c.msgHash, st, sig, payer, req)
}

// record moves a pending settlement to its outcome and answers it. Only
// the call that moves the row answers success: a payment is granted once
// even when a retry reconciles it while the first call still waits.
func (f *Facilitator) record(ctx context.Context, msgHash []byte, st *solrpc.SignatureStatus, sig, payer string, req *x402.PaymentRequirements) *x402.SettleResponse {
	fail := func(r *x402.Refusal) *x402.SettleResponse {
		return &x402.SettleResponse{ErrorReason: r.Reason, ErrorMessage: r.Msg, Payer: payer, Transaction: sig, Network: req.Network}
	}
	state, reason := StateSettled, ""
	if st.Failed() {
		state, reason = StateFailed, string(st.Err)
	}
	won, err := f.ledger.finish(context.WithoutCancel(ctx), msgHash, state, reason)
	switch {
	case err != nil:
		// The outcome is on chain but not in the ledger: the row stays
		// pending (no second settlement), and a retry reconciles it.
		f.o.Logger.Error("facilitator: recording a settlement", "signature", sig, "err", err)
		return fail(f.refusal(err, x402.ReasonUnexpectedSettle))
	case !won:
		return fail(&x402.Refusal{Reason: x402.ReasonDuplicateSettlement, Msg: "this transaction was already settled (" + sig + ")"})
	case st.Failed():
		return fail(&x402.Refusal{Reason: x402.ReasonTransactionFailed, Msg: "the transaction failed on chain: " + truncate(string(st.Err))})
	}
	f.o.Logger.Info("facilitator: settled", "signature", sig, "payer", payer, "pay_to", req.PayTo, "amount", req.Amount, "asset", req.Asset)
	return &x402.SettleResponse{Success: true, Payer: payer, Transaction: sig, Network: req.Network}
}

// reconcile answers a settlement of a payment whose earlier settlement
// left its outcome unknown (pending, signed and sent): it asks the chain,
// and if the transaction landed, records it, answering success to the one
// call that records it. It returns nil when there is nothing to reconcile.
func (f *Facilitator) reconcile(ctx context.Context, p *x402.PaymentPayload, req *x402.PaymentRequirements) *x402.SettleResponse {
	t, err := x402.VerifyExactSVM(p, req, []solana.PublicKey{f.o.FeePayer.PublicKey()}, f.o.Verify)
	if err != nil {
		return nil
	}
	h := sha256.Sum256(t.Message)
	row, err := f.ledger.find(ctx, h[:], "")
	if err != nil || row == nil || row.State != StatePending || row.Signature == "" {
		return nil
	}
	st, err := f.o.RPC.SignatureStatus(ctx, row.Signature)
	if err != nil || st == nil || !(st.ConfirmationStatus == "confirmed" || st.ConfirmationStatus == "finalized" || st.Failed()) {
		return nil
	}
	return f.record(ctx, h[:], st, row.Signature, t.Payer.String(), req)
}

func (f *Facilitator) releaseOrLog(messageHash []byte) {
	if err := f.ledger.release(context.Background(), messageHash); err != nil {
		f.o.Logger.Error("facilitator: releasing a reservation", "err", err)
	}
}

// confirm polls the signature's status until it is confirmed or
// finalized, or the timeout passes.
func (f *Facilitator) confirm(ctx context.Context, sig string) (*solrpc.SignatureStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, f.o.ConfirmTimeout)
	defer cancel()
	tick := time.NewTicker(f.o.PollInterval)
	defer tick.Stop()
	for {
		st, err := f.o.RPC.SignatureStatus(ctx, sig)
		if err == nil && st != nil && (st.ConfirmationStatus == "confirmed" || st.ConfirmationStatus == "finalized" || st.Failed()) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return nil, err
		case <-tick.C:
		}
	}
}
