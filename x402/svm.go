package x402

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"unicode/utf8"

	bin "github.com/gagliardetto/binary"
	"github.com/gagliardetto/solana-go"
)

// The shape of an `exact` payment on Solana, as the client builds it and
// the facilitator co-signs it. This is the contract with the signer's
// fee-payer policy: the facilitator asks its fee-payer key to sign only a
// transaction that VerifyExactSVM accepted, which is exactly this:
//
//	signatures: 2 — [0] the fee payer (facilitator), [1] the payer (the
//	            transfer's authority); no other signer
//	message:    legacy or v0 without address-table lookups; account 0 is
//	            the fee payer; no account key repeats
//	instructions, in this order (3 to 6):
//	  0 ComputeBudget SetComputeUnitLimit  data 02 ‖ u32 LE units (≤ MaxComputeUnitLimit)
//	  1 ComputeBudget SetComputeUnitPrice  data 03 ‖ u64 LE µlamports (≤ MaxComputeUnitPrice)
//	  2 SPL Token (or Token-2022) TransferChecked
//	      data 0c ‖ u64 LE amount (= requirements.amount) ‖ u8 decimals
//	      accounts [source, mint (= asset), destination (= ATA(payTo, asset)), authority (= payer)]
//	  3..5 Memo (MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr, no accounts,
//	      UTF-8 data; exactly one, equal to extra.memo when that is set;
//	      at least one always) or Lighthouse (wallet-injected guards)
//	the fee payer is in no instruction's accounts (so it is never the
//	authority, the source or anything else an instruction touches)
//
// For the signer's policy in its fee-payer mode this means: programs
// {ComputeBudget, Token, Memo, Lighthouse}; no SOL transfer; the signer's
// key is the fee payer and appears in no instruction; the SPL transfer's
// authority is another key.

// Program ids the `exact` scheme uses.
var (
	ComputeBudgetProgram = solana.ComputeBudget
	TokenProgram         = solana.TokenProgramID
	Token2022Program     = solana.Token2022ProgramID
	ATAProgram           = solana.SPLAssociatedTokenAccountProgramID
	MemoProgram          = solana.MemoProgramID
	LighthouseProgram    = solana.MustPublicKeyFromBase58("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95")
)

// Compute budget bounds. The spec's cap on the price is 5 lamports per
// compute unit; the limit cap is ChatMCP's (stricter, allowed by the
// spec): a TransferChecked and a memo need about 15 000 units.
const (
	MaxComputeUnitPrice     = 5_000_000 // µlamports per compute unit
	MaxComputeUnitLimit     = 200_000
	DefaultComputeUnitLimit = 20_000
	DefaultComputeUnitPrice = 1
	// MaxTransaction is Solana's packet limit on a wire transaction.
	MaxTransaction = 1232
)

const (
	ixSetComputeUnitLimit = 2
	ixSetComputeUnitPrice = 3
	ixTransferChecked     = 12
)

// ExactParams are what a client needs to build an `exact` transfer.
type ExactParams struct {
	// FeePayer is requirements.extra.feePayer. Required.
	FeePayer solana.PublicKey
	// Payer owns the source token account and signs the transfer. Required.
	Payer solana.PublicKey
	// Mint is requirements.asset; Decimals its decimals. Required.
	Mint     solana.PublicKey
	Decimals uint8
	// PayTo is requirements.payTo. Required.
	PayTo solana.PublicKey
	// Amount is requirements.amount in atomic units. Required.
	Amount uint64
	// Memo is the memo's data. If empty, 16 random bytes in hex (the
	// spec's nonce), so that two payments of the same amount differ.
	Memo string
	// Blockhash is a recent blockhash (getLatestBlockhash). Required.
	Blockhash solana.Hash
	// ComputeUnitLimit, if zero, DefaultComputeUnitLimit.
	ComputeUnitLimit uint32
	// ComputeUnitPrice in µlamports, if zero, DefaultComputeUnitPrice.
	ComputeUnitPrice uint64
	// Rand makes the memo nonce. If nil, crypto/rand.Reader.
	Rand io.Reader
}

// ParamsFor fills the requirement-derived fields of ExactParams from req.
func ParamsFor(req *PaymentRequirements, payer solana.PublicKey, decimals uint8, blockhash solana.Hash) (*ExactParams, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Scheme != SchemeExact {
		return nil, fmt.Errorf("scheme %q is not %q", req.Scheme, SchemeExact)
	}
	if req.Extra == nil || req.Extra.FeePayer == "" {
		return nil, fmt.Errorf("requirements have no extra.feePayer")
	}
	fp, err := solana.PublicKeyFromBase58(req.Extra.FeePayer)
	if err != nil {
		return nil, fmt.Errorf("extra.feePayer: %w", err)
	}
	mint, err := solana.PublicKeyFromBase58(req.Asset)
	if err != nil {
		return nil, fmt.Errorf("asset: %w", err)
	}
	payTo, err := solana.PublicKeyFromBase58(req.PayTo)
	if err != nil {
		return nil, fmt.Errorf("payTo: %w", err)
	}
	amount, _ := ParseAmount(req.Amount)
	return &ExactParams{FeePayer: fp, Payer: payer, Mint: mint, Decimals: decimals, PayTo: payTo,
		Amount: amount, Memo: req.Extra.Memo, Blockhash: blockhash}, nil
}

// ATA is the associated token account of owner for mint under the token
// program tokenProgram.
func ATA(owner, mint, tokenProgram solana.PublicKey) (solana.PublicKey, error) {
	a, _, err := solana.FindProgramAddress([][]byte{owner[:], tokenProgram[:], mint[:]}, ATAProgram)
	return a, err
}

// BuildExact returns the unsigned `exact` transfer transaction (the shape
// above) with room for both signatures.
func BuildExact(p *ExactParams) (*solana.Transaction, error) {
	if p.FeePayer.IsZero() || p.Payer.IsZero() || p.Mint.IsZero() || p.PayTo.IsZero() || p.Amount == 0 {
		return nil, fmt.Errorf("building exact transfer: fee payer, payer, mint, payTo and amount are required")
	}
	if p.FeePayer.Equals(p.Payer) {
		return nil, fmt.Errorf("building exact transfer: the fee payer cannot be the payer")
	}
	limit, price := p.ComputeUnitLimit, p.ComputeUnitPrice
	if limit == 0 {
		limit = DefaultComputeUnitLimit
	}
	if price == 0 {
		price = DefaultComputeUnitPrice
	}
	memo := p.Memo
	if memo == "" {
		r := p.Rand
		if r == nil {
			r = rand.Reader
		}
		var nonce [16]byte
		if _, err := io.ReadFull(r, nonce[:]); err != nil {
			return nil, fmt.Errorf("building exact transfer: memo nonce: %w", err)
		}
		memo = hex.EncodeToString(nonce[:])
	}
	if len(memo) > MaxMemoBytes || !utf8.ValidString(memo) {
		return nil, fmt.Errorf("building exact transfer: memo must be UTF-8 of at most %d bytes", MaxMemoBytes)
	}
	src, err := ATA(p.Payer, p.Mint, TokenProgram)
	if err != nil {
		return nil, err
	}
	dst, err := ATA(p.PayTo, p.Mint, TokenProgram)
	if err != nil {
		return nil, err
	}
	limitData := binary.LittleEndian.AppendUint32([]byte{ixSetComputeUnitLimit}, limit)
	priceData := binary.LittleEndian.AppendUint64([]byte{ixSetComputeUnitPrice}, price)
	xfer := append(binary.LittleEndian.AppendUint64([]byte{ixTransferChecked}, p.Amount), p.Decimals)
	ixs := []solana.Instruction{
		solana.NewInstruction(ComputeBudgetProgram, nil, limitData),
		solana.NewInstruction(ComputeBudgetProgram, nil, priceData),
		solana.NewInstruction(TokenProgram, solana.AccountMetaSlice{
			solana.Meta(src).WRITE(),
			solana.Meta(p.Mint),
			solana.Meta(dst).WRITE(),
			solana.Meta(p.Payer).SIGNER(),
		}, xfer),
		solana.NewInstruction(MemoProgram, nil, []byte(memo)),
	}
	tx, err := solana.NewTransaction(ixs, p.Blockhash, solana.TransactionPayer(p.FeePayer))
	if err != nil {
		return nil, fmt.Errorf("building exact transfer: %w", err)
	}
	tx.Signatures = make([]solana.Signature, tx.Message.Header.NumRequiredSignatures)
	return tx, nil
}

// SignAs adds signer's signature to tx, at signer's place among the
// transaction's signers; sign signs the message bytes (an ed25519 key, or
// a remote signer). Other signatures are left as they are.
func SignAs(tx *solana.Transaction, signer solana.PublicKey, sign func(msg []byte) ([]byte, error)) error {
	msg, err := tx.Message.MarshalBinary()
	if err != nil {
		return err
	}
	n := int(tx.Message.Header.NumRequiredSignatures)
	if len(tx.Signatures) != n {
		return fmt.Errorf("transaction has %d signatures for %d signers", len(tx.Signatures), n)
	}
	for i := 0; i < n && i < len(tx.Message.AccountKeys); i++ {
		if tx.Message.AccountKeys[i].Equals(signer) {
			sig, err := sign(msg)
			if err != nil {
				return err
			}
			if len(sig) != ed25519.SignatureSize || !ed25519.Verify(signer[:], msg, sig) {
				return fmt.Errorf("signature by %s does not verify", signer)
			}
			copy(tx.Signatures[i][:], sig)
			return nil
		}
	}
	return fmt.Errorf("%s is not a signer of the transaction", signer)
}

// KeySigner returns a sign function for SignAs from an ed25519 key.
func KeySigner(key ed25519.PrivateKey) func([]byte) ([]byte, error) {
	return func(msg []byte) ([]byte, error) { return ed25519.Sign(key, msg), nil }
}

// EncodeTransaction is the base64 wire form of tx.
func EncodeTransaction(tx *solana.Transaction) (string, error) {
	b, err := tx.MarshalBinary()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeTransaction parses a base64 wire transaction strictly: at most
// MaxTransaction bytes, nothing after the transaction, one signature per
// required signer, a consistent header, no address-table lookups, no
// repeated account keys, every index in range.
func DecodeTransaction(b64 string) (*solana.Transaction, error) {
	if len(b64) > base64.StdEncoding.EncodedLen(MaxTransaction) {
		return nil, refuse(ReasonTxDecode, "transaction longer than %d bytes", MaxTransaction)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, refuse(ReasonTxDecode, "transaction is not base64")
	}
	if len(raw) > MaxTransaction {
		return nil, refuse(ReasonTxDecode, "transaction longer than %d bytes", MaxTransaction)
	}
	dec := bin.NewBinDecoder(raw)
	var tx solana.Transaction
	if err := tx.UnmarshalWithDecoder(dec); err != nil {
		return nil, refuse(ReasonTxDecode, "%v", err)
	}
	if dec.Remaining() != 0 {
		return nil, refuse(ReasonTxDecode, "%d bytes after the transaction", dec.Remaining())
	}
	m := &tx.Message
	h := m.Header
	nk := len(m.AccountKeys)
	switch {
	case nk == 0:
		return nil, refuse(ReasonTxDecode, "no account keys")
	case int(h.NumRequiredSignatures) == 0 || int(h.NumRequiredSignatures) > nk:
		return nil, refuse(ReasonTxDecode, "%d required signatures for %d accounts", h.NumRequiredSignatures, nk)
	case h.NumReadonlySignedAccounts >= h.NumRequiredSignatures:
		return nil, refuse(ReasonTxDecode, "the fee payer is read-only")
	case int(h.NumReadonlyUnsignedAccounts) > nk-int(h.NumRequiredSignatures):
		return nil, refuse(ReasonTxDecode, "header counts exceed the account keys")
	case len(tx.Signatures) != int(h.NumRequiredSignatures):
		return nil, refuse(ReasonTxDecode, "%d signatures for %d required signers", len(tx.Signatures), h.NumRequiredSignatures)
	case m.IsVersioned() && m.AddressTableLookups.NumLookups() > 0:
		return nil, refuse(ReasonTxShape, "address-table lookups are not accepted")
	}
	// The message must re-encode to the bytes received, so that what is
	// verified here is what the signatures cover and the chain executes.
	msg, err := m.MarshalBinary()
	if err != nil || len(raw) < len(msg) || string(raw[len(raw)-len(msg):]) != string(msg) || len(raw)-len(msg) != 1+64*len(tx.Signatures) {
		return nil, refuse(ReasonTxDecode, "the message is not canonically encoded")
	}
	seen := make(map[solana.PublicKey]bool, nk)
	for _, k := range m.AccountKeys {
		if seen[k] {
			return nil, refuse(ReasonTxDecode, "account %s listed twice", k)
		}
		seen[k] = true
	}
	for i, ix := range m.Instructions {
		if int(ix.ProgramIDIndex) >= nk || ix.ProgramIDIndex == 0 {
			return nil, refuse(ReasonTxDecode, "instruction %d: program index %d out of range", i, ix.ProgramIDIndex)
		}
		for _, a := range ix.Accounts {
			if int(a) >= nk {
				return nil, refuse(ReasonTxDecode, "instruction %d: account index %d out of range", i, a)
			}
		}
	}
	return &tx, nil
}
