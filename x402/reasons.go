package x402

import "fmt"

// Reason codes a facilitator answers in VerifyResponse.InvalidReason and
// SettleResponse.ErrorReason. The generic ones are the spec's (§9); the
// `exact` Solana ones use the names of the x402 reference facilitator
// where it has one, and each names the rule of scheme_exact_svm.md that
// failed. They are stable: clients and tests branch on them.
const (
	ReasonInvalidPayload              = "invalid_payload"
	ReasonInvalidRequirements         = "invalid_payment_requirements"
	ReasonInvalidNetwork              = "invalid_network"
	ReasonUnsupportedScheme           = "unsupported_scheme"
	ReasonInvalidVersion              = "invalid_x402_version"
	ReasonInsufficientFunds           = "insufficient_funds"
	ReasonInvalidTransactionState     = "invalid_transaction_state"
	ReasonUnexpectedVerify            = "unexpected_verify_error"
	ReasonUnexpectedSettle            = "unexpected_settle_error"
	ReasonDuplicateSettlement         = "duplicate_settlement"
	ReasonRequirementsMismatch        = "invalid_exact_svm_requirements_mismatch"
	ReasonPaymentIDConflict           = "payment_identifier_conflict"
	ReasonFeePayerNotManaged          = "invalid_exact_solana_fee_payer_not_managed_by_facilitator"
	ReasonMissingFeePayer             = "invalid_exact_solana_payload_missing_fee_payer"
	ReasonTxDecode                    = "invalid_exact_solana_payload_transaction_could_not_be_decoded"
	ReasonTxShape                     = "invalid_exact_solana_payload_transaction_shape"
	ReasonInstructionsLength          = "invalid_exact_solana_payload_transaction_instructions_length"
	ReasonComputeLimit                = "invalid_exact_solana_payload_transaction_instructions_compute_limit_instruction"
	ReasonComputePrice                = "invalid_exact_solana_payload_transaction_instructions_compute_price_instruction"
	ReasonComputePriceTooHigh         = "invalid_exact_solana_payload_transaction_instructions_compute_price_instruction_too_high"
	ReasonNoTransfer                  = "invalid_exact_solana_payload_no_transfer_instruction"
	ReasonUnknownInstruction          = "invalid_exact_solana_payload_unknown_optional_instruction"
	ReasonFeePayerInInstruction       = "invalid_exact_solana_payload_fee_payer_in_instruction_accounts"
	ReasonFeePayerTransferringFunds   = "invalid_exact_solana_payload_transaction_fee_payer_transferring_funds"
	ReasonFeePayerMismatch            = "invalid_exact_solana_fee_payer_mismatch"
	ReasonMintMismatch                = "invalid_exact_solana_payload_mint_mismatch"
	ReasonRecipientMismatch           = "invalid_exact_solana_payload_recipient_mismatch"
	ReasonAmountMismatch              = "invalid_exact_solana_payload_amount_mismatch"
	ReasonMemoMissing                 = "invalid_exact_solana_payload_memo_missing"
	ReasonMemoCount                   = "invalid_exact_solana_payload_memo_count"
	ReasonMemoMismatch                = "invalid_exact_solana_payload_memo_mismatch"
	ReasonPayerSignature              = "invalid_exact_solana_payload_payer_signature"
	ReasonBlockhashExpired            = "invalid_exact_solana_payload_blockhash_expired"
	ReasonSourceMissing               = "invalid_exact_solana_payload_source_account_missing"
	ReasonDestinationMissing          = "invalid_exact_solana_payload_destination_account_missing"
	ReasonSimulationFailed            = "invalid_exact_solana_transaction_simulation_failed"
	ReasonSigningFailed               = "invalid_exact_solana_transaction_signing_failed"
	ReasonTransactionFailed           = "invalid_exact_solana_transaction_failed"
	ReasonTransactionConfirmationFail = "invalid_exact_solana_transaction_confirmation_failed"
)

// Refusal is a payment refused by a named rule. Reason is one of the
// Reason codes; Msg says what was found, never a secret.
type Refusal struct {
	Reason string
	Msg    string
	// Payer is the payer's address when it was known at the refusal.
	Payer string
}

func (r *Refusal) Error() string { return r.Reason + ": " + r.Msg }

func refuse(reason, format string, args ...any) *Refusal {
	return &Refusal{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}
