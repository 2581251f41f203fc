// Package signer is chatmcp-signer's logic: it parses Solana transactions
// into a normalized view, evaluates a deny-wins, default-deny policy,
// reserves budget atomically in the ledger before it signs, holds
// transactions above a threshold for a person, and audits every decision.
// The daemon (signer/daemon) wires it to a key, a store and RA-TLS.
package signer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/mr-tron/base58"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/wallet"
)

// Operations a capability token's tools must allow.
const (
	OpSignTransaction = "sign_transaction"
	OpSignMessage     = "sign_message"
)

// Auditor records decisions; *audit.Log is one. An Append error means the
// decision was not recorded, and nothing is signed.
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) error
}

// Options configure a Signer.
type Options struct {
	// Key is the Solana key. Required.
	Key *wallet.Keypair
	// Policy is what Key signs. Required.
	Policy *Policy
	// Ledger reserves budget. Required.
	Ledger *Ledger
	// Audit records every decision. Required.
	Audit Auditor
	// ApprovalTimeout is how long a held request waits. If zero,
	// DefaultApprovalTimeout.
	ApprovalTimeout time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Logger receives operational logs. If nil, slog.Default().
	Logger *slog.Logger
	// OnHold, if non-nil, is called when a request starts waiting for a
	// person (tests use it as a readiness signal).
	OnHold func(signerapi.Approval)
	// Metrics, if non-nil, counts decisions (ops.Signer in the daemon).
	Metrics DecisionObserver
}

// DecisionObserver counts decisions: decision is granted, denied, held or
// error; reason the rule or reason code of a refusal, "" for a grant.
type DecisionObserver interface {
	Decision(decision, reason string)
}

// Signer signs what its policy allows. It is safe for concurrent use.
type Signer struct {
	key     *wallet.Keypair
	pub     solana.PublicKey
	pol     *Policy
	ledger  *Ledger
	audit   Auditor
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	onHold  func(signerapi.Approval)
	metrics DecisionObserver

	mu      sync.Mutex
	pending map[string]*pending
}

type pending struct {
	a     signerapi.Approval
	done  chan bool
	chain string // the requesting token's chain id
	// holder is the wallet the token is delegated to: never its approver.
	holder string
}

// New returns a Signer.
func New(o *Options) (*Signer, error) {
	if o.Key == nil || o.Policy == nil || o.Ledger == nil || o.Audit == nil {
		return nil, errors.New("signer: key, policy, ledger and audit are required")
	}
	s := &Signer{key: o.Key, pol: o.Policy, ledger: o.Ledger, audit: o.Audit, timeout: o.ApprovalTimeout,
		now: o.Now, log: o.Logger, onHold: o.OnHold, metrics: o.Metrics, pending: map[string]*pending{}}
	copy(s.pub[:], o.Key.Address().PublicKey())
	if s.timeout == 0 {
		s.timeout = DefaultApprovalTimeout
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// PublicKey is the signer's Solana address.
func (s *Signer) PublicKey() solana.PublicKey { return s.pub }

// Policy is the signer's policy.
func (s *Signer) Policy() *Policy { return s.pol }

// Principal is who a token speaks for, for the per-principal window: its
// subject, or its id when it names none.
func Principal(t *captoken.Verified) string {
	if t.Subject != "" {
		return "subject:" + t.Subject
	}
	return "token:" + t.ID
}

// SignTransaction parses wire, checks tok's scope, evaluates the policy,
// reserves the budget (windows and tok's budget caveats), waits for a
// person above approve_above, signs and audits. A refusal is a *Refusal;
// a transaction that does not parse wraps ErrMalformed. Nothing is signed
// unless the decision was audited.
func (s *Signer) SignTransaction(ctx context.Context, tok *captoken.Verified, wire []byte) (*signerapi.SignResponse, error) {
	start := s.now()
	entry := audit.Entry{Type: "signer.sign", Action: OpSignTransaction, Actor: tok.ID, Principal: Principal(tok), TokenChain: tok.ChainID()}
	deny := func(err error) error {
		var r *Refusal
		switch {
		case errors.As(err, &r):
			entry.Decision, entry.Reason = "denied", r.Rule
		case errors.Is(err, ErrMalformed):
			entry.Decision, entry.Reason = "denied", signerapi.ReasonMalformedTransaction
		default:
			entry.Decision, entry.Reason = "error", "internal"
		}
		entry.DurationMS = float64(s.now().Sub(start).Microseconds()) / 1000
		s.observe(entry.Decision, entry.Reason)
		if aerr := s.audit.Append(context.WithoutCancel(ctx), entry); aerr != nil {
			return fmt.Errorf("auditing a refusal: %w", errors.Join(err, aerr))
		}
		return err
	}
	if !tok.Allows(OpSignTransaction) {
		return nil, deny(refuse(signerapi.RuleTokenScope, "the token does not allow %s", OpSignTransaction))
	}
	tx, err := Parse(wire)
	if err != nil {
		return nil, deny(err)
	}
	sum := tx.MessageSHA256()
	entry.ArgsSHA256 = hex.EncodeToString(sum[:])
	v, err := s.pol.Evaluate(tx, s.pub)
	if err != nil {
		return nil, deny(err)
	}
	sig := s.key.Sign(tx.Message)
	sigStr := base58.Encode(sig)
	entry.Request = sigStr
	caps := s.caps(tok)
	existing, err := s.ledger.Reserve(ctx, &ReserveRequest{
		Signature: sigStr, Principal: Principal(tok), Amount: v.Amount, Fee: v.Fee,
		MessageSHA256: entry.ArgsSHA256, Blockhash: tx.Blockhash.String(), Caps: caps, Held: v.NeedsApproval,
	})
	if err != nil {
		return nil, deny(err)
	}
	release := func(cause error) error {
		if existing {
			return cause
		}
		if _, rerr := s.ledger.Release(context.WithoutCancel(ctx), sigStr); rerr != nil {
			s.log.Error("signer: releasing a reservation", "signature", sigStr, "err", rerr)
		}
		return cause
	}
	resp := &signerapi.SignResponse{Signature: sigStr, Amount: v.Amount}
	if v.NeedsApproval && !existing {
		id, err := s.hold(ctx, tok, v, sigStr, entry.ArgsSHA256)
		resp.Approval = id
		if err != nil {
			return nil, release(deny(err))
		}
		if err := s.ledger.Confirm(ctx, sigStr); err != nil {
			return nil, release(deny(err))
		}
	}
	out, err := tx.withSignature(s.pub, sig)
	if err != nil {
		return nil, release(deny(err))
	}
	entry.Decision = "granted"
	if existing {
		entry.Reason = "already reserved"
	}
	entry.DurationMS = float64(s.now().Sub(start).Microseconds()) / 1000
	if err := s.audit.Append(context.WithoutCancel(ctx), entry); err != nil {
		s.observe("error", "internal")
		return nil, release(fmt.Errorf("auditing: %w", err))
	}
	s.observe("granted", "")
	resp.Transaction = out
	return resp, nil
}

// caps are the ledger caps of a request: the policy's windows and the
// token's budget caveats.
func (s *Signer) caps(tok *captoken.Verified) []Cap {
	var caps []Cap
	if w := s.pol.Window; w != nil {
		caps = append(caps, Cap{Rule: signerapi.RuleWindow, Kind: CapOverall, Max: w.Max, Period: time.Duration(w.Period)})
		if w.MaxFees > 0 {
			caps = append(caps, Cap{Rule: signerapi.RuleWindowFees, Kind: CapFees, Max: w.MaxFees, Period: time.Duration(w.Period)})
		}
		if w.PerPrincipal > 0 {
			caps = append(caps, Cap{Rule: signerapi.RuleWindowPrincipal, Kind: CapPrincipal, Max: w.PerPrincipal, Period: time.Duration(w.Period)})
		}
	}
	for _, b := range tok.Budgets() {
		caps = append(caps, Cap{Rule: signerapi.RuleTokenBudget, Kind: CapTokenScope, Scope: b.Scope, Max: b.Amount, Period: b.Period})
	}
	return caps
}

// SignMessage signs an off-chain message when the policy allows it.
func (s *Signer) SignMessage(ctx context.Context, tok *captoken.Verified, msg []byte) (string, error) {
	entry := audit.Entry{Type: "signer.sign", Action: OpSignMessage, Actor: tok.ID, Principal: Principal(tok), TokenChain: tok.ChainID()}
	var err error
	switch {
	case !tok.Allows(OpSignMessage):
		err = refuse(signerapi.RuleTokenScope, "the token does not allow %s", OpSignMessage)
	case !s.pol.SignMessages:
		err = refuse(signerapi.RuleMessage, "the policy does not sign messages")
	case len(msg) > signerapi.MaxMessageSize || len(msg) < len(signerapi.OffchainMessagePrefix) || string(msg[:len(signerapi.OffchainMessagePrefix)]) != signerapi.OffchainMessagePrefix:
		err = refuse(signerapi.RuleMessage, "a message must start with the off-chain message prefix and be at most %d bytes", signerapi.MaxMessageSize)
	}
	if err != nil {
		entry.Decision, entry.Reason = "denied", err.(*Refusal).Rule
		s.observe(entry.Decision, entry.Reason)
		if aerr := s.audit.Append(context.WithoutCancel(ctx), entry); aerr != nil {
			return "", fmt.Errorf("auditing a refusal: %w", aerr)
		}
		return "", err
	}
	sig := base58.Encode(s.key.Sign(msg))
	entry.Decision, entry.Request = "granted", sig
	if err := s.audit.Append(context.WithoutCancel(ctx), entry); err != nil {
		s.observe("error", "internal")
		return "", fmt.Errorf("auditing: %w", err)
	}
	s.observe("granted", "")
	return sig, nil
}

// hold waits for a person to approve (Decide) the request, returning the
// approval id; a denial, a timeout or the caller going away is a refusal.
func (s *Signer) hold(ctx context.Context, tok *captoken.Verified, v *Verdict, sig, msgSHA string) (string, error) {
	var raw [16]byte
	rand.Read(raw[:])
	now := s.now()
	p := &pending{done: make(chan bool, 1), chain: tok.ChainID(), holder: tok.Holder, a: signerapi.Approval{
		ID: hex.EncodeToString(raw[:]), Principal: Principal(tok), Amount: v.Amount, Mint: v.Mint, Recipient: v.Recipient,
		Signature: sig, MessageSHA256: msgSHA, Approver: tok.Approver, Created: now.UTC(), Expires: now.Add(s.timeout).UTC(),
	}}
	s.mu.Lock()
	s.pending[p.a.ID] = p
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, p.a.ID)
		s.mu.Unlock()
	}()
	if err := s.audit.Append(context.WithoutCancel(ctx), audit.Entry{Type: "signer.sign", Action: OpSignTransaction, Actor: tok.ID,
		Principal: Principal(tok), Decision: "held", Reason: "approve_above", Request: sig, TokenChain: tok.ChainID()}); err != nil {
		return p.a.ID, fmt.Errorf("auditing a hold: %w", err)
	}
	s.observe("held", "")
	if s.onHold != nil {
		s.onHold(p.a)
	}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case ok := <-p.done:
		if !ok {
			return p.a.ID, refuse(signerapi.RuleApprovalDenied, "approval %s was denied", p.a.ID)
		}
		return p.a.ID, nil
	case <-t.C:
		return p.a.ID, refuse(signerapi.RuleApprovalTimeout, "approval %s was not given within %s", p.a.ID, s.timeout)
	case <-ctx.Done():
		return p.a.ID, refuse(signerapi.RuleApprovalTimeout, "the request ended while approval %s was pending", p.a.ID)
	}
}

// Pending lists the requests waiting for a person.
func (s *Signer) Pending() []signerapi.Approval {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]signerapi.Approval, 0, len(s.pending))
	for _, p := range s.pending {
		out = append(out, p.a)
	}
	return out
}

// PendingFor lists the held requests made with exactly tok's chain, for
// the holder to pass on to its approver.
func (s *Signer) PendingFor(tok *captoken.Verified) []signerapi.Approval {
	chain := tok.ChainID()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []signerapi.Approval{}
	for _, p := range s.pending {
		if p.chain == chain {
			out = append(out, p.a)
		}
	}
	return out
}

// StatementRefusal is a refused approval statement: Reason is one of
// signerapi's statement reason codes.
type StatementRefusal struct {
	Reason string
	Msg    string
}

func (e *StatementRefusal) Error() string { return e.Msg }

// DecideByStatement decides held request id by an approval statement
// (agentapi.ApprovalStatement, the gateway's format for an agent's grant)
// from the wallet the requesting token names as approver. It accepts the
// statement only when, in this order: it parses and names id; it verifies
// (device certified by the statement's wallet, device signature, not
// expired, not too far ahead); the request is pending (a statement is
// single-use); the token names an approver, the statement's wallet is
// exactly it and not the token's holder; it names the held message's
// digest, or the SHA-256 of the request's Arguments (an approval request
// in a conversation). A refusal leaves the request pending; every verified statement
// is audited.
func (s *Signer) DecideByStatement(ctx context.Context, id string, body []byte) error {
	st, err := agentapi.ParseApprovalStatement(body)
	if err != nil {
		return &StatementRefusal{signerapi.ReasonBadStatement, err.Error()}
	}
	if st.ApprovalID != id {
		return &StatementRefusal{signerapi.ReasonBadStatement, fmt.Sprintf("the statement is for approval %s, not %s", st.ApprovalID, id)}
	}
	if err := st.Verify(s.now()); err != nil {
		if c, _ := agentapi.CheckOf(err); c == agentapi.CheckExpired {
			return &StatementRefusal{signerapi.ReasonStatementExpired, err.Error()}
		}
		return &StatementRefusal{signerapi.ReasonBadStatement, err.Error()}
	}
	wallet := st.Approver.String()
	s.mu.Lock()
	p, ok := s.pending[id]
	var refusal *StatementRefusal
	switch {
	case !ok:
		refusal = &StatementRefusal{signerapi.ReasonNotPending, fmt.Sprintf("no pending approval %s", id)}
	case p.a.Approver == "":
		refusal = &StatementRefusal{signerapi.ReasonNoApprover, "the request's token names no approver: only the admin decides it"}
	case wallet == p.holder:
		refusal = &StatementRefusal{signerapi.ReasonNotApprover, wallet + " holds the token: a holder never approves its own requests"}
	case wallet != p.a.Approver:
		refusal = &StatementRefusal{signerapi.ReasonNotApprover, fmt.Sprintf("the token names %s as its approver, not %s", p.a.Approver, wallet)}
	case st.ArgumentsSHA256.String() != p.a.MessageSHA256 && st.ArgumentsSHA256 != agentapi.Sum(p.a.Arguments()):
		refusal = &StatementRefusal{signerapi.ReasonArgumentsMismatch, fmt.Sprintf("the statement approves %s, the held message is %s (arguments %s)", st.ArgumentsSHA256, p.a.MessageSHA256, agentapi.Sum(p.a.Arguments()))}
	default:
		delete(s.pending, id)
	}
	s.mu.Unlock()
	e := audit.Entry{Type: "signer.approval", Actor: "wallet:" + wallet, Action: "approval.statement", Request: id, ArgsSHA256: st.ArgumentsSHA256.String()}
	if refusal != nil {
		e.Decision, e.Reason = "denied", "statement refused: "+refusal.Reason
		if aerr := s.audit.Append(context.WithoutCancel(ctx), e); aerr != nil {
			s.log.Error("signer: auditing a refused statement", "err", aerr)
		}
		return refusal
	}
	approve := st.Decision == agentapi.Approve
	e.Decision = map[bool]string{true: "granted", false: "denied"}[approve]
	e.Reason = "by device " + st.Device.Device
	e.Principal = p.a.Principal
	if err := s.audit.Append(context.WithoutCancel(ctx), e); err != nil {
		approve = false // not recorded: nothing is signed on it
	}
	p.done <- approve
	return nil
}

// ErrNotPending is returned by Decide for an unknown or decided approval.
var ErrNotPending = errors.New("approval not pending")

// Decide approves or denies a pending request (the admin API: the
// caller's own capability token never approves).
func (s *Signer) Decide(ctx context.Context, id string, approve bool) error {
	s.mu.Lock()
	p, ok := s.pending[id]
	if ok {
		delete(s.pending, id)
	}
	s.mu.Unlock()
	if !ok {
		return ErrNotPending
	}
	decision := "denied"
	if approve {
		decision = "granted"
	}
	err := s.audit.Append(context.WithoutCancel(ctx), audit.Entry{Type: "signer.approval", Actor: "admin", Action: "decide", Decision: decision, Request: p.a.Signature})
	if err != nil {
		// Not recorded: deny, so nothing is signed on an unaudited approval.
		approve = false
	}
	p.done <- approve
	return err
}

func (s *Signer) observe(decision, reason string) {
	if s.metrics != nil {
		s.metrics.Decision(decision, reason)
	}
}

// Reasons are the reason words a decision can carry, for a metrics label
// set: every policy rule, a malformed transaction, internal.
func Reasons() []string {
	return append(signerapi.Rules(), signerapi.ReasonMalformedTransaction, "internal")
}

func auditRelease(r *signerapi.Reservation) audit.Entry {
	return audit.Entry{Type: "signer.release", Actor: "admin", Principal: r.Principal, Action: "release", Decision: "ok", Request: r.Signature}
}
