package x402

import (
	"crypto/ed25519"
	"encoding/binary"
	"unicode/utf8"

	"github.com/gagliardetto/solana-go"
)

// ExactTransfer is what an accepted `exact` Solana transaction does.
type ExactTransfer struct {
	FeePayer, Payer, Source, Destination, Mint, TokenProgram solana.PublicKey
	Amount                                                   uint64
	Decimals                                                 uint8
	Memo                                                     string
	ComputeUnitLimit                                         uint32
	ComputeUnitPrice                                         uint64
	Blockhash                                                solana.Hash
	// Message is the serialized message both signatures cover.
	Message []byte
}

// VerifyOptions tighten VerifyExactSVM. The zero value is the spec's rules
// with ChatMCP's compute-unit limit cap.
type VerifyOptions struct {
	// MaxComputeUnitPrice in µlamports. If zero, MaxComputeUnitPrice.
	MaxComputeUnitPrice uint64
	// MaxComputeUnitLimit. If zero, MaxComputeUnitLimit.
	MaxComputeUnitLimit uint32
}

// VerifyExactSVM checks a payment's transaction against the requirements
// by every rule of scheme_exact_svm.md that needs no chain state (the
// facilitator checks account existence, balances and the blockhash by
// simulation), and the payer's signature. feePayers are the facilitator's
// fee-payer keys: extra.feePayer must be one of them. It returns the
// transfer, or a *Refusal naming the rule.
func VerifyExactSVM(p *PaymentPayload, req *PaymentRequirements, feePayers []solana.PublicKey, o *VerifyOptions) (*ExactTransfer, error) {
	var opts VerifyOptions
	if o != nil {
		opts = *o
	}
	if opts.MaxComputeUnitPrice == 0 {
		opts.MaxComputeUnitPrice = MaxComputeUnitPrice
	}
	if opts.MaxComputeUnitLimit == 0 {
		opts.MaxComputeUnitLimit = MaxComputeUnitLimit
	}
	// The requirements and the payment's choice.
	if p.X402Version != Version && p.X402Version != 1 {
		return nil, refuse(ReasonInvalidVersion, "x402Version %d", p.X402Version)
	}
	if err := req.Validate(); err != nil {
		return nil, refuse(ReasonInvalidRequirements, "%v", err)
	}
	if req.Scheme != SchemeExact || p.Accepted.Scheme != SchemeExact {
		return nil, refuse(ReasonUnsupportedScheme, "scheme %q", p.Accepted.Scheme)
	}
	if n, _ := ParseNetwork(req.Network); !n.IsSolana() {
		return nil, refuse(ReasonInvalidNetwork, "network %s is not Solana", req.Network)
	}
	if !p.Accepted.Equal(req) {
		return nil, refuse(ReasonRequirementsMismatch, "the payment accepted other requirements than these")
	}
	if req.Extra == nil || req.Extra.FeePayer == "" {
		return nil, refuse(ReasonMissingFeePayer, "requirements have no extra.feePayer")
	}
	feePayer, err := solana.PublicKeyFromBase58(req.Extra.FeePayer)
	if err != nil {
		return nil, refuse(ReasonMissingFeePayer, "extra.feePayer is not an address")
	}
	managed := false
	for _, k := range feePayers {
		managed = managed || k.Equals(feePayer)
	}
	if !managed {
		return nil, refuse(ReasonFeePayerNotManaged, "fee payer %s is not this facilitator's", feePayer)
	}
	mint, err := solana.PublicKeyFromBase58(req.Asset)
	if err != nil {
		return nil, refuse(ReasonInvalidRequirements, "asset is not an address")
	}
	payTo, err := solana.PublicKeyFromBase58(req.PayTo)
	if err != nil {
		return nil, refuse(ReasonInvalidRequirements, "payTo is not an address")
	}
	amount, _ := ParseAmount(req.Amount)

	tx, err := DecodeTransaction(p.Payload.Transaction)
	if err != nil {
		return nil, err
	}
	m := &tx.Message
	keys := m.AccountKeys
	if !keys[0].Equals(feePayer) {
		return nil, refuse(ReasonFeePayerMismatch, "the transaction's fee payer is %s, not %s", keys[0], feePayer)
	}
	// Rule 1: layout.
	ixs := m.Instructions
	if len(ixs) < 3 || len(ixs) > 6 {
		return nil, refuse(ReasonInstructionsLength, "%d instructions, want 3 to 6", len(ixs))
	}
	// Rule 2: the fee payer is in no instruction's accounts (so neither
	// the transfer's authority nor its source).
	for i, ix := range ixs {
		for _, a := range ix.Accounts {
			if a == 0 {
				reason := ReasonFeePayerInInstruction
				if i == 2 {
					reason = ReasonFeePayerTransferringFunds
				}
				return nil, refuse(reason, "the fee payer is an account of instruction %d", i)
			}
		}
	}
	t := &ExactTransfer{FeePayer: feePayer, Blockhash: m.RecentBlockhash}
	// Rule 3: compute budget.
	if ix := ixs[0]; !keys[ix.ProgramIDIndex].Equals(ComputeBudgetProgram) || len(ix.Accounts) != 0 ||
		len(ix.Data) != 5 || ix.Data[0] != ixSetComputeUnitLimit {
		return nil, refuse(ReasonComputeLimit, "instruction 0 is not ComputeBudget SetComputeUnitLimit")
	}
	t.ComputeUnitLimit = binary.LittleEndian.Uint32(ixs[0].Data[1:])
	if t.ComputeUnitLimit > opts.MaxComputeUnitLimit {
		return nil, refuse(ReasonComputeLimit, "compute unit limit %d above %d", t.ComputeUnitLimit, opts.MaxComputeUnitLimit)
	}
	if ix := ixs[1]; !keys[ix.ProgramIDIndex].Equals(ComputeBudgetProgram) || len(ix.Accounts) != 0 ||
		len(ix.Data) != 9 || ix.Data[0] != ixSetComputeUnitPrice {
		return nil, refuse(ReasonComputePrice, "instruction 1 is not ComputeBudget SetComputeUnitPrice")
	}
	t.ComputeUnitPrice = binary.LittleEndian.Uint64(ixs[1].Data[1:])
	if t.ComputeUnitPrice > opts.MaxComputeUnitPrice {
		return nil, refuse(ReasonComputePriceTooHigh, "compute unit price %d µlamports above %d", t.ComputeUnitPrice, opts.MaxComputeUnitPrice)
	}
	// Rule 4: the transfer.
	ix := ixs[2]
	t.TokenProgram = keys[ix.ProgramIDIndex]
	if !t.TokenProgram.Equals(TokenProgram) && !t.TokenProgram.Equals(Token2022Program) {
		return nil, refuse(ReasonNoTransfer, "instruction 2 is not an SPL Token program's")
	}
	if len(ix.Data) != 10 || ix.Data[0] != ixTransferChecked || len(ix.Accounts) != 4 {
		return nil, refuse(ReasonNoTransfer, "instruction 2 is not TransferChecked with 4 accounts")
	}
	t.Source, t.Mint, t.Destination, t.Payer = keys[ix.Accounts[0]], keys[ix.Accounts[1]], keys[ix.Accounts[2]], keys[ix.Accounts[3]]
	t.Amount = binary.LittleEndian.Uint64(ix.Data[1:9])
	t.Decimals = ix.Data[9]
	if !t.Mint.Equals(mint) {
		return nil, refuse(ReasonMintMismatch, "the transfer's mint is %s, not %s", t.Mint, mint)
	}
	wantDst, err := ATA(payTo, mint, t.TokenProgram)
	if err != nil || !t.Destination.Equals(wantDst) {
		return nil, refuse(ReasonRecipientMismatch, "the destination %s is not the associated token account of %s for %s", t.Destination, payTo, mint)
	}
	if t.Amount != amount {
		return nil, refuse(ReasonAmountMismatch, "the transfer moves %d, the requirements ask exactly %d", t.Amount, amount)
	}
	if feeATA, err := ATA(feePayer, mint, t.TokenProgram); err == nil && t.Source.Equals(feeATA) {
		return nil, refuse(ReasonFeePayerTransferringFunds, "the source is the fee payer's token account")
	}
	// Rule 1 (optional instructions) and the memo.
	var memos []string
	for i, ix := range ixs[3:] {
		prog := keys[ix.ProgramIDIndex]
		switch {
		case prog.Equals(MemoProgram):
			if len(ix.Accounts) != 0 || !utf8.Valid(ix.Data) || len(ix.Data) > MaxMemoBytes {
				return nil, refuse(ReasonMemoMismatch, "instruction %d: a memo must be UTF-8 of at most %d bytes with no accounts", i+3, MaxMemoBytes)
			}
			memos = append(memos, string(ix.Data))
		case prog.Equals(LighthouseProgram):
		default:
			return nil, refuse(ReasonUnknownInstruction, "instruction %d calls %s, not Memo or Lighthouse", i+3, prog)
		}
	}
	if len(memos) == 0 {
		return nil, refuse(ReasonMemoMissing, "no Memo instruction")
	}
	if req.Extra.Memo != "" {
		if len(memos) != 1 {
			return nil, refuse(ReasonMemoCount, "%d Memo instructions, want exactly one", len(memos))
		}
		if memos[0] != req.Extra.Memo {
			return nil, refuse(ReasonMemoMismatch, "the memo is not extra.memo")
		}
	}
	t.Memo = memos[0]
	// Signers: the fee payer and the payer, nobody else; the payer signed.
	if m.Header.NumRequiredSignatures != 2 || !keys[1].Equals(t.Payer) {
		return nil, refuse(ReasonTxShape, "signers must be exactly the fee payer and the transfer's authority")
	}
	msg, err := m.MarshalBinary()
	if err != nil {
		return nil, refuse(ReasonTxDecode, "re-encoding the message: %v", err)
	}
	t.Message = msg
	if !ed25519.Verify(t.Payer[:], msg, tx.Signatures[1][:]) {
		r := refuse(ReasonPayerSignature, "the payer's signature does not verify")
		r.Payer = t.Payer.String()
		return nil, r
	}
	return t, nil
}
