// Package signerapi is the wire protocol of chatmcp-signer: paths, the JSON
// bodies of its signing, admin and approval API, and its reason codes, one
// per policy rule, so that every refusal names the rule that refused
// (docs/payments.md). The signer (package signer) and its clients (the CLI)
// both import it; nothing re-declares a wire type.
package signerapi

import (
	"encoding/json"
	"time"

	"github.com/chatmcp/chatmcp/internal/edge"
)

// Paths of the signer's HTTP surface. PathSign, PathSignMessage and
// PathPubkey take a capability token (Authorization: Bearer cmt1.…) or
// none (pubkey); admin paths take the admin token.
const (
	PathAttestation = "/.well-known/chatmcp/attestation" // GET ?nonce=HEX: fresh evidence over the TLS key
	PathPubkey      = "/v1/pubkey"                       // GET: Pubkey
	PathSign        = "/v1/sign"                         // POST SignRequest: SignResponse
	PathSignMessage = "/v1/sign-message"                 // POST SignMessageRequest: SignMessageResponse
	// PathStatements: GET with a capability token lists the caller's own
	// held requests ([]Approval); POST /{id}/statement with an
	// agentapi.ApprovalStatement by the token's approver decides one
	// (204). No admin token: the statement is the authority.
	PathStatements = "/v1/approvals"
	PathAdmin      = "/admin/v1/"
	PathTokens     = "/admin/v1/tokens"    // POST MintRequest: MintResponse; POST /{id}/revoke: 204
	PathApprovals  = "/admin/v1/approvals" // GET: []Approval; POST /{id}/approve, /{id}/deny: 204
	PathRelease    = "/admin/v1/release"   // POST ReleaseRequest: Reservation
	PathBudget     = "/admin/v1/budget"    // GET: Budget
)

// Limits of request bodies.
const (
	// MaxTransactionSize is Solana's packet limit for a wire transaction.
	MaxTransactionSize = 1232
	// MaxMessageSize caps an off-chain message to sign.
	MaxMessageSize = 1232
	// MaxBody caps every request body (base64 of the above plus JSON).
	MaxBody = 8 << 10
)

// OffchainMessagePrefix starts every message PathSignMessage signs: the
// signing domain of Solana off-chain messages. No transaction message can
// begin with 0xff, so a signed message is never a signed transaction.
const OffchainMessagePrefix = "\xffsolana offchain"

// Pubkey is the body of GET PathPubkey.
type Pubkey struct {
	// PublicKey is the signer's Solana address (base58).
	PublicKey string `json:"public_key"`
	// Audience is what the signer's capability tokens must be minted for.
	Audience string `json:"audience"`
	// FeePayerOnly is true for a facilitator fee-payer key.
	FeePayerOnly bool `json:"fee_payer_only,omitzero"`
	// Dev is true for a signer on the simulated TEE.
	Dev bool `json:"dev,omitzero"`
}

// SignRequest is the body of POST PathSign: a wire transaction (legacy or
// v0), standard base64 in JSON.
type SignRequest struct {
	Transaction []byte `json:"transaction"`
}

// SignResponse is a signed transaction: the request's bytes with the
// signer's signature in its slot.
type SignResponse struct {
	Transaction []byte `json:"transaction"`
	// Signature is the signer's signature (base58), which names the
	// reservation.
	Signature string `json:"signature"`
	// Amount is the value reserved against the budgets, in base units.
	Amount uint64 `json:"amount"`
	// Approval is the approval id when a person approved the request.
	Approval string `json:"approval,omitempty"`
}

// SignMessageRequest is the body of POST PathSignMessage; Message must
// start with OffchainMessagePrefix.
type SignMessageRequest struct {
	Message []byte `json:"message"`
}

// SignMessageResponse carries the signature (base58) of the message.
type SignMessageResponse struct {
	Signature string `json:"signature"`
}

// MintRequest is the body of POST PathTokens.
type MintRequest struct {
	// Budget, if set, is a budget caveat "AMOUNT/PERIOD" (e.g.
	// "5000000/24h"): at most AMOUNT base units in any rolling PERIOD.
	Budget string `json:"budget,omitempty"`
	// TTL is a Go duration; empty means 24h.
	TTL     string `json:"ttl,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// MintResponse is a new capability token for the signer.
type MintResponse struct {
	ID      string    `json:"id"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// Approval is a sign request waiting for a person (GET PathApprovals).
type Approval struct {
	ID        string `json:"id"`
	Principal string `json:"principal"`
	Amount    uint64 `json:"amount"`
	Mint      string `json:"mint,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	Signature string `json:"signature"`
	// MessageSHA256 is the digest of the transaction message: what an
	// approval statement's arguments_sha256 must name.
	MessageSHA256 string `json:"message_sha256"`
	// Approver is the wallet the token's chain names as approver, if any:
	// it may decide by approval statement.
	Approver string    `json:"approver,omitempty"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
}

// Arguments are the held request as the arguments of an approval request
// in a conversation (agentapi.ApprovalRequest, tool ToolPayment): canonical
// JSON (keys sorted, no white space) of what the person approves, the
// transaction message digest included. An approval statement may name the
// SHA-256 of these bytes instead of MessageSHA256; the signer computes
// them from its own record, so the holder cannot make the person read
// another amount than the one signed.
func (a *Approval) Arguments() []byte {
	b, _ := json.Marshal(map[string]any{"amount": a.Amount, "message_sha256": a.MessageSHA256, "mint": a.Mint,
		"recipient": a.Recipient, "signature": a.Signature, "principal": a.Principal})
	return b
}

// ToolPayment is the tool name of an approval request for a held payment.
const ToolPayment = "x402 payment"

// ReleaseRequest is the body of POST PathRelease: the signer's signature
// naming a reservation an operator knows was never used.
type ReleaseRequest struct {
	Signature string `json:"signature"`
}

// Reservation is one entry of the budget ledger.
type Reservation struct {
	Signature string    `json:"signature"`
	Principal string    `json:"principal"`
	Amount    uint64    `json:"amount"`
	State     string    `json:"state"`
	Created   time.Time `json:"created"`
}

// Budget is the body of GET PathBudget: what the overall window has
// reserved.
type Budget struct {
	Period   string `json:"period"`
	Max      uint64 `json:"max"`
	Reserved uint64 `json:"reserved"`
}

// ErrorBody is every error answer (internal/edge).
type ErrorBody = edge.ErrorBody

// Policy rule reason codes: a refusal by the policy names exactly one.
// They are part of the API: never reword one.
const (
	// RuleProgram: an instruction invokes a program not in policy.programs.
	RuleProgram = "program"
	// RuleInstruction: an instruction of a known program (System, SPL
	// Token, Token-2022, Compute Budget, Associated Token Account) that the
	// signer does not sign for (Approve, SetAuthority, CloseAccount, …).
	RuleInstruction = "instruction"
	// RuleMint: a token transfer the signer authorizes moves a mint not in
	// policy.mints, or one whose mint cannot be known from the transaction.
	RuleMint = "mint"
	// RuleRecipient: a destination that is not the associated token
	// account of one of policy.recipients.
	RuleRecipient = "recipient"
	// RuleSOLTransfer: a System transfer moves lamports out of the signer's
	// key (the signer never pays in SOL, only fees).
	RuleSOLTransfer = "sol_transfer"
	// RuleMaxPerTx: the transaction moves more than policy.max_per_tx.
	RuleMaxPerTx = "max_per_tx"
	// RuleWindow: the overall rolling window (policy.window.max) would be
	// exceeded.
	RuleWindow = "window"
	// RuleWindowPrincipal: the principal's rolling window
	// (policy.window.per_principal) would be exceeded.
	RuleWindowPrincipal = "window_principal"
	// RuleWindowFees: the fees the key may pay in the window
	// (policy.window.max_fees, lamports) would be exceeded.
	RuleWindowFees = "window_fees"
	// RuleTokenBudget: a budget caveat of the capability token would be
	// exceeded.
	RuleTokenBudget = "token_budget"
	// RuleApprovalDenied: a person denied the request (above
	// policy.approve_above).
	RuleApprovalDenied = "approval_denied"
	// RuleApprovalTimeout: nobody approved in time.
	RuleApprovalTimeout = "approval_timeout"
	// RuleApprovalPending: the same transaction is already waiting for a
	// person; a second request does not get around the approval.
	RuleApprovalPending = "approval_pending"
	// RuleFeePayer: a fee-payer-only key is not the fee payer, or appears
	// in an instruction's accounts (authority or source of a transfer).
	RuleFeePayer = "fee_payer"
	// RuleComputeUnitPrice: the compute-unit price exceeds
	// policy.max_compute_unit_price while the signer pays the fees.
	RuleComputeUnitPrice = "compute_unit_price"
	// RuleComputeUnitLimit: the compute-unit limit is unset or exceeds
	// policy.max_compute_unit_limit while the signer pays the fees.
	RuleComputeUnitLimit = "compute_unit_limit"
	// RuleNotSigner: the signer's key is not a required signer of the
	// transaction.
	RuleNotSigner = "not_signer"
	// RuleLookupTables: a v0 transaction loads accounts from address
	// lookup tables, which the signer cannot see.
	RuleLookupTables = "lookup_tables"
	// RuleMessage: message signing is off (policy.sign_messages), or the
	// message lacks OffchainMessagePrefix.
	RuleMessage = "message"
	// RuleTokenScope: the capability token does not allow the operation
	// (its tools do not match sign_transaction or sign_message).
	RuleTokenScope = "token_scope"
)

// Rules lists every policy rule reason code.
func Rules() []string {
	return []string{RuleProgram, RuleInstruction, RuleMint, RuleRecipient, RuleSOLTransfer, RuleMaxPerTx,
		RuleWindow, RuleWindowPrincipal, RuleWindowFees, RuleTokenBudget, RuleApprovalDenied, RuleApprovalTimeout, RuleApprovalPending,
		RuleFeePayer, RuleComputeUnitPrice, RuleComputeUnitLimit, RuleNotSigner, RuleLookupTables, RuleMessage, RuleTokenScope}
}

// IsRule reports whether reason is a policy rule (CLI exit code 3).
func IsRule(reason string) bool {
	for _, r := range Rules() {
		if r == reason {
			return true
		}
	}
	return false
}

// Other reason codes.
const (
	// ReasonMalformedTransaction: the transaction does not parse (400; CLI
	// exit code 2).
	ReasonMalformedTransaction = "malformed_transaction"
	ReasonUnauthorized         = "unauthorized" // 401: missing or refused token
	ReasonNotFound             = "not_found"    // 404
	ReasonMethod               = "method_not_allowed"
	ReasonTooLarge             = "too_large"   // 413
	ReasonMalformed            = "malformed"   // 400: a body that is not strict JSON of its shape
	ReasonBadBudget            = "bad_budget"  // 400: a budget that is not AMOUNT/PERIOD
	ReasonBadTTL               = "bad_ttl"     // 400
	ReasonBadID                = "bad_id"      // 400: a token id that is not 32 or 64 hex digits
	ReasonNotPending           = "not_pending" // 404: unknown or decided approval, unknown reservation
	ReasonInternal             = "internal"    // 500: nothing was signed
	// Approval statements (PathStatements): each names its failed check.
	ReasonBadStatement      = "bad_statement"      // 400: malformed, not for this id, or does not verify
	ReasonStatementExpired  = "statement_expired"  // 403
	ReasonNoApprover        = "no_approver"        // 403: the held request's token names no approver
	ReasonNotApprover       = "not_approver"       // 403: signed by another wallet, or by the token's holder
	ReasonArgumentsMismatch = "arguments_mismatch" // 409: the statement names another message digest
)

// Refusal statuses: a policy refusal is 403, a malformed transaction 400.
const (
	StatusRefused   = 403
	StatusMalformed = 400
)
