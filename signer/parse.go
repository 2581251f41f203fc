package signer

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	bin "github.com/gagliardetto/binary"
	"github.com/gagliardetto/solana-go"

	"github.com/chatmcp/chatmcp/signerapi"
)

// Program ids the parser understands. Memo v1 is listed so that a policy
// can allow it by name; its instructions are opaque like v2's.
var (
	SystemProgram   = solana.SystemProgramID
	TokenProgram    = solana.TokenProgramID
	Token2022       = solana.Token2022ProgramID
	ATAProgram      = solana.SPLAssociatedTokenAccountProgramID
	ComputeBudget   = solana.ComputeBudget
	MemoProgram     = solana.MemoProgramID
	MemoV1Program   = solana.MustPublicKeyFromBase58("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo")
	errMalformedTx  = errors.New("malformed transaction")
	maxInstructions = 64
)

// ErrMalformed is wrapped by every Parse error: the bytes are not one
// well-formed Solana wire transaction.
var ErrMalformed = errMalformedTx

// Instruction kinds of the normalized view.
const (
	KindSOLTransfer      = "system.transfer"
	KindTransfer         = "token.transfer"
	KindTransferChecked  = "token.transfer_checked"
	KindComputeUnitLimit = "compute_budget.set_compute_unit_limit"
	KindComputeUnitPrice = "compute_budget.set_compute_unit_price"
	KindHeapFrame        = "compute_budget.request_heap_frame"
	KindATACreate        = "ata.create"
	KindMemo             = "memo"
	// KindOpaque is an instruction of a program the parser does not
	// decode: allowed only by policy.programs.
	KindOpaque = "opaque"
	// KindUnsupported is an instruction of a program the parser decodes
	// that is none of the above (Approve, SetAuthority, CreateAccount…):
	// always refused (rule instruction).
	KindUnsupported = "unsupported"
)

// Instruction is one instruction of the normalized view.
type Instruction struct {
	Program  solana.PublicKey
	Kind     string
	Name     string // for KindUnsupported, which one (e.g. "token.approve")
	Accounts []solana.PublicKey
}

// SOLTransfer is a System program transfer.
type SOLTransfer struct {
	From, To solana.PublicKey
	Lamports uint64
}

// TokenTransfer is an SPL Token or Token-2022 Transfer or TransferChecked.
// Mint is zero for a Transfer, which names none (the policy infers it from
// the source account when that is an associated token account).
type TokenTransfer struct {
	Program                        solana.PublicKey
	Checked                        bool
	Mint                           solana.PublicKey
	Decimals                       uint8
	Amount                         uint64
	Source, Destination, Authority solana.PublicKey
}

// Tx is the normalized view of a wire transaction, what the policy reads.
type Tx struct {
	// Version is -1 for a legacy message, 0 for v0.
	Version   int
	FeePayer  solana.PublicKey
	Signers   []solana.PublicKey
	Blockhash solana.Hash
	// Programs are the programs invoked, in first-use order.
	Programs       []solana.PublicKey
	Instructions   []Instruction
	SOLTransfers   []SOLTransfer
	TokenTransfers []TokenTransfer
	// ComputeUnitLimit and ComputeUnitPrice (micro-lamports per unit) are
	// the compute-budget settings; nil when not set.
	ComputeUnitLimit *uint32
	ComputeUnitPrice *uint64
	Memos            [][]byte
	// LookupTables is the number of address lookup tables a v0 message
	// loads accounts from; when non-zero, Instructions is empty (their
	// accounts cannot be known offline) and the policy refuses.
	LookupTables int

	// Message is the signed message bytes.
	Message []byte
	wire    []byte
	sigOff  int
}

// Wire returns a copy of the transaction's wire bytes.
func (t *Tx) Wire() []byte { return append([]byte(nil), t.wire...) }

// MessageSHA256 is the digest of the message, which the audit log records.
func (t *Tx) MessageSHA256() [32]byte { return sha256.Sum256(t.Message) }

// shortvec reads Solana's compact-u16 at b, returning value and length.
func shortvec(b []byte) (int, int, error) {
	v := 0
	for i := 0; i < 3; i++ {
		if i >= len(b) {
			return 0, 0, errors.New("truncated length")
		}
		c := b[i]
		v |= int(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if i > 0 && c == 0 {
				return 0, 0, errors.New("non-canonical length")
			}
			if v > 0xffff {
				return 0, 0, errors.New("length overflows u16")
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("length longer than 3 bytes")
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Parse decodes a wire transaction strictly (solana-go's decoder, then the
// runtime's structural rules: one signature slot per required signer, no
// trailing bytes, no duplicate account, every index in range) and
// normalizes it. Every error wraps ErrMalformed.
func Parse(wire []byte) (tx *Tx, err error) {
	if len(wire) > signerapi.MaxTransactionSize {
		return nil, malformed("%d bytes exceed the %d-byte packet limit", len(wire), signerapi.MaxTransactionSize)
	}
	defer func() {
		// The decoder is a dependency: should it ever panic on hostile
		// bytes, fail closed as malformed rather than crash the signer.
		if r := recover(); r != nil {
			tx, err = nil, malformed("decoder panic: %v", r)
		}
	}()
	nsig, n, err := shortvec(wire)
	if err != nil {
		return nil, malformed("signature count: %v", err)
	}
	msgOff := n + 64*nsig
	if nsig == 0 || msgOff >= len(wire) {
		return nil, malformed("%d signatures in %d bytes", nsig, len(wire))
	}
	t := &Tx{wire: append([]byte(nil), wire...), sigOff: n, Version: -1}
	t.Message = t.wire[msgOff:]
	var m solana.Message
	dec := bin.NewBinDecoder(t.Message)
	if err := m.UnmarshalWithDecoder(dec); err != nil {
		return nil, malformed("message: %v", err)
	}
	if dec.Remaining() != 0 {
		return nil, malformed("%d trailing bytes", dec.Remaining())
	}
	if m.IsVersioned() {
		if t.Message[0] != 0x80 {
			return nil, malformed("message version %d is not supported", t.Message[0]&0x7f)
		}
		t.Version = 0
	}
	h := m.Header
	keys := m.AccountKeys
	switch {
	case h.NumRequiredSignatures == 0:
		return nil, malformed("no required signature")
	case int(h.NumRequiredSignatures) != nsig:
		return nil, malformed("%d signatures for %d required signers", nsig, h.NumRequiredSignatures)
	case int(h.NumRequiredSignatures) > len(keys):
		return nil, malformed("%d required signers of %d accounts", h.NumRequiredSignatures, len(keys))
	case h.NumReadonlySignedAccounts >= h.NumRequiredSignatures:
		return nil, malformed("the fee payer is read-only")
	case int(h.NumReadonlyUnsignedAccounts) > len(keys)-int(h.NumRequiredSignatures):
		return nil, malformed("%d read-only unsigned accounts of %d", h.NumReadonlyUnsignedAccounts, len(keys)-int(h.NumRequiredSignatures))
	case len(m.Instructions) > maxInstructions:
		return nil, malformed("%d instructions exceed %d", len(m.Instructions), maxInstructions)
	}
	seen := make(map[solana.PublicKey]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			return nil, malformed("account %s appears twice", k)
		}
		seen[k] = true
	}
	t.FeePayer = keys[0]
	t.Signers = append([]solana.PublicKey(nil), keys[:h.NumRequiredSignatures]...)
	t.Blockhash = m.RecentBlockhash
	for _, l := range m.AddressTableLookups {
		if len(l.WritableIndexes)+len(l.ReadonlyIndexes) == 0 {
			return nil, malformed("an address lookup table loads nothing")
		}
	}
	t.LookupTables = len(m.AddressTableLookups)
	total := len(keys)
	for _, l := range m.AddressTableLookups {
		total += len(l.WritableIndexes) + len(l.ReadonlyIndexes)
	}
	if total > 256 {
		return nil, malformed("%d accounts exceed 256", total)
	}
	for i, ci := range m.Instructions {
		if int(ci.ProgramIDIndex) >= total {
			return nil, malformed("instruction %d: program index %d out of range", i, ci.ProgramIDIndex)
		}
		if ci.ProgramIDIndex == 0 {
			return nil, malformed("instruction %d: the fee payer is not a program", i)
		}
		for _, a := range ci.Accounts {
			if int(a) >= total {
				return nil, malformed("instruction %d: account index %d out of range", i, a)
			}
		}
	}
	if t.LookupTables > 0 {
		return t, nil
	}
	for i, ci := range m.Instructions {
		prog := keys[ci.ProgramIDIndex]
		accts := make([]solana.PublicKey, len(ci.Accounts))
		for j, a := range ci.Accounts {
			accts[j] = keys[a]
		}
		if err := t.add(prog, accts, ci.Data); err != nil {
			return nil, malformed("instruction %d (%s): %v", i, prog, err)
		}
	}
	return t, nil
}

func (t *Tx) add(prog solana.PublicKey, accts []solana.PublicKey, data []byte) error {
	known := false
	for _, p := range t.Programs {
		if p == prog {
			known = true
		}
	}
	if !known {
		t.Programs = append(t.Programs, prog)
	}
	ins := Instruction{Program: prog, Accounts: accts, Kind: KindOpaque}
	var err error
	switch prog {
	case SystemProgram:
		err = t.system(&ins, data)
	case TokenProgram, Token2022:
		err = t.token(&ins, data)
	case ComputeBudget:
		err = t.computeBudget(&ins, data)
	case ATAProgram:
		switch {
		case len(data) == 0 || len(data) == 1 && data[0] <= 1:
			ins.Kind = KindATACreate
			if len(accts) < 6 {
				return fmt.Errorf("create takes 6 accounts, has %d", len(accts))
			}
		default:
			ins.Kind, ins.Name = KindUnsupported, "ata.recover_nested"
		}
	case MemoProgram, MemoV1Program:
		ins.Kind = KindMemo
		t.Memos = append(t.Memos, append([]byte(nil), data...))
	}
	if err != nil {
		return err
	}
	t.Instructions = append(t.Instructions, ins)
	return nil
}

// wantShape checks that an instruction's data is exactly size bytes and
// that it has at least accounts accounts, naming the instruction in the
// error.
func wantShape(ins *Instruction, name string, data []byte, size, accounts int) error {
	if len(data) != size {
		return fmt.Errorf("%s of %d bytes, want %d", name, len(data), size)
	}
	if len(ins.Accounts) < accounts {
		return fmt.Errorf("%s takes %d accounts, has %d", name, accounts, len(ins.Accounts))
	}
	return nil
}

func (t *Tx) system(ins *Instruction, data []byte) error {
	if len(data) < 4 {
		return errors.New("system instruction shorter than its tag")
	}
	switch tag := binary.LittleEndian.Uint32(data); tag {
	case 2:
		if err := wantShape(ins, "transfer", data, 12, 2); err != nil {
			return err
		}
		ins.Kind = KindSOLTransfer
		t.SOLTransfers = append(t.SOLTransfers, SOLTransfer{From: ins.Accounts[0], To: ins.Accounts[1], Lamports: binary.LittleEndian.Uint64(data[4:])})
	default:
		ins.Kind, ins.Name = KindUnsupported, fmt.Sprintf("system.%d", tag)
	}
	return nil
}

// tokenNames name the SPL Token instructions the signer refuses, for the
// refusal message.
var tokenNames = map[byte]string{
	0: "initialize_mint", 1: "initialize_account", 2: "initialize_multisig", 4: "approve", 5: "revoke",
	6: "set_authority", 7: "mint_to", 8: "burn", 9: "close_account", 10: "freeze_account", 11: "thaw_account",
	13: "approve_checked", 14: "mint_to_checked", 15: "burn_checked", 16: "initialize_account2",
	17: "sync_native", 18: "initialize_account3", 19: "initialize_multisig2", 20: "initialize_mint2",
}

func (t *Tx) token(ins *Instruction, data []byte) error {
	if len(data) == 0 {
		return errors.New("empty token instruction")
	}
	switch data[0] {
	case 3:
		if err := wantShape(ins, "transfer", data, 9, 3); err != nil {
			return err
		}
		ins.Kind = KindTransfer
		t.TokenTransfers = append(t.TokenTransfers, TokenTransfer{
			Program: ins.Program, Amount: binary.LittleEndian.Uint64(data[1:]),
			Source: ins.Accounts[0], Destination: ins.Accounts[1], Authority: ins.Accounts[2],
		})
	case 12:
		if err := wantShape(ins, "transfer_checked", data, 10, 4); err != nil {
			return err
		}
		ins.Kind = KindTransferChecked
		t.TokenTransfers = append(t.TokenTransfers, TokenTransfer{
			Program: ins.Program, Checked: true, Amount: binary.LittleEndian.Uint64(data[1:]), Decimals: data[9],
			Source: ins.Accounts[0], Mint: ins.Accounts[1], Destination: ins.Accounts[2], Authority: ins.Accounts[3],
		})
	default:
		name, ok := tokenNames[data[0]]
		if !ok {
			name = fmt.Sprintf("%d", data[0])
		}
		ins.Kind, ins.Name = KindUnsupported, "token."+name
	}
	return nil
}

func (t *Tx) computeBudget(ins *Instruction, data []byte) error {
	if len(data) == 0 {
		return errors.New("empty compute budget instruction")
	}
	switch data[0] {
	case 1:
		if err := wantShape(ins, "request_heap_frame", data, 5, 0); err != nil {
			return err
		}
		ins.Kind = KindHeapFrame
	case 2:
		if err := wantShape(ins, "set_compute_unit_limit", data, 5, 0); err != nil {
			return err
		}
		if t.ComputeUnitLimit != nil {
			return errors.New("compute unit limit set twice")
		}
		v := binary.LittleEndian.Uint32(data[1:])
		t.ComputeUnitLimit, ins.Kind = &v, KindComputeUnitLimit
	case 3:
		if err := wantShape(ins, "set_compute_unit_price", data, 9, 0); err != nil {
			return err
		}
		if t.ComputeUnitPrice != nil {
			return errors.New("compute unit price set twice")
		}
		v := binary.LittleEndian.Uint64(data[1:])
		t.ComputeUnitPrice, ins.Kind = &v, KindComputeUnitPrice
	default:
		ins.Kind, ins.Name = KindUnsupported, fmt.Sprintf("compute_budget.%d", data[0])
	}
	return nil
}

// Sign returns the wire transaction with sig in key's signature slot.
// key must be one of t.Signers.
func (t *Tx) withSignature(key solana.PublicKey, sig []byte) ([]byte, error) {
	for i, s := range t.Signers {
		if s == key {
			out := t.Wire()
			copy(out[t.sigOff+64*i:], sig)
			return out, nil
		}
	}
	return nil, errors.New("key is not a required signer")
}

// SignerIndex is the index of key among the required signers, or -1.
func (t *Tx) SignerIndex(key solana.PublicKey) int {
	for i, s := range t.Signers {
		if s == key {
			return i
		}
	}
	return -1
}

// AssociatedTokenAddress derives the associated token account of owner
// for mint under token program prog (SPL Token or Token-2022).
func AssociatedTokenAddress(owner, mint, prog solana.PublicKey) (solana.PublicKey, error) {
	a, _, err := solana.FindProgramAddress([][]byte{owner[:], prog[:], mint[:]}, ATAProgram)
	return a, err
}
