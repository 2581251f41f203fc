// Package signertest builds real Solana transactions for the signer's
// tests (solana-go's SPL Token, Compute Budget, System, Memo and
// Associated Token Account instruction builders): no mock, the bytes a
// wallet would send; and serves a real signer for its clients' tests.
package signertest

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/gagliardetto/solana-go"
	ata "github.com/gagliardetto/solana-go/programs/associated-token-account"
	computebudget "github.com/gagliardetto/solana-go/programs/compute-budget"
	"github.com/gagliardetto/solana-go/programs/memo"
	"github.com/gagliardetto/solana-go/programs/system"
	"github.com/gagliardetto/solana-go/programs/token"

	"github.com/chatmcp/chatmcp/wallet"
)

// Decimals of the test mint (USDC's).
const Decimals = 6

// NewKeypair returns a fresh wallet keypair and its Solana public key.
func NewKeypair(t testing.TB) (*wallet.Keypair, solana.PublicKey) {
	t.Helper()
	kp, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return kp, PublicKey(kp)
}

// PublicKey is kp's Solana public key.
func PublicKey(kp *wallet.Keypair) solana.PublicKey {
	return solana.PublicKeyFromBytes(kp.Address().PublicKey())
}

// NewAddress returns a random address (a mint, an owner nobody signs for).
func NewAddress(t testing.TB) solana.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return solana.PublicKeyFromBytes(pub)
}

// ATA is owner's associated token account for mint (SPL Token program).
func ATA(t testing.TB, owner, mint solana.PublicKey) solana.PublicKey {
	t.Helper()
	a, _, err := solana.FindAssociatedTokenAddress(owner, mint)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TransferChecked moves amount of mint from owner's associated token
// account to to's, authorized by owner.
func TransferChecked(t testing.TB, amount uint64, owner, mint, to solana.PublicKey) solana.Instruction {
	t.Helper()
	return token.NewTransferCheckedInstruction(amount, Decimals, ATA(t, owner, mint), mint, ATA(t, to, mint), owner, nil).Build()
}

// Transfer is the unchecked SPL Transfer (no mint in the instruction).
func Transfer(t testing.TB, amount uint64, owner, mint, to solana.PublicKey) solana.Instruction {
	t.Helper()
	return token.NewTransferInstruction(amount, ATA(t, owner, mint), ATA(t, to, mint), owner, nil).Build()
}

// Approve delegates amount of owner's token account to delegate.
func Approve(t testing.TB, amount uint64, owner, mint, delegate solana.PublicKey) solana.Instruction {
	t.Helper()
	return token.NewApproveInstruction(amount, ATA(t, owner, mint), delegate, owner, nil).Build()
}

// SOLTransfer moves lamports from from to to.
func SOLTransfer(lamports uint64, from, to solana.PublicKey) solana.Instruction {
	return system.NewTransferInstruction(lamports, from, to).Build()
}

// AdvanceNonce advances a durable nonce account (a transaction that never
// expires), authorized by authority.
func AdvanceNonce(nonce, authority solana.PublicKey) solana.Instruction {
	return system.NewAdvanceNonceAccountInstruction(nonce, solana.SysVarRecentBlockHashesPubkey, authority).Build()
}

// ComputeUnitPrice sets the compute-unit price in micro-lamports.
func ComputeUnitPrice(microLamports uint64) solana.Instruction {
	return computebudget.NewSetComputeUnitPriceInstruction(microLamports).Build()
}

// ComputeUnitLimit sets the compute-unit limit.
func ComputeUnitLimit(units uint32) solana.Instruction {
	return computebudget.NewSetComputeUnitLimitInstruction(units).Build()
}

// Memo is a memo instruction signed by signer.
func Memo(msg string, signer solana.PublicKey) solana.Instruction {
	return memo.NewMemoInstruction([]byte(msg), signer).Build()
}

// CreateATA creates owner's associated token account for mint, paid by
// payer.
func CreateATA(payer, owner, mint solana.PublicKey) solana.Instruction {
	return ata.NewCreateInstruction(payer, owner, mint).Build()
}

// Blockhash is a fixed recent blockhash for offline transactions.
var Blockhash = solana.MustHashFromBase58("EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N")

// Wire builds a legacy transaction paid by feePayer and returns its wire
// bytes with every signature slot zero (nobody has signed yet).
func Wire(t testing.TB, feePayer solana.PublicKey, ins ...solana.Instruction) []byte {
	t.Helper()
	return WireWith(t, feePayer, Blockhash, ins...)
}

// WireWith is Wire with a given blockhash.
func WireWith(t testing.TB, feePayer solana.PublicKey, blockhash solana.Hash, ins ...solana.Instruction) []byte {
	t.Helper()
	tx, err := solana.NewTransaction(ins, blockhash, solana.TransactionPayer(feePayer))
	if err != nil {
		t.Fatal(err)
	}
	tx.Signatures = make([]solana.Signature, tx.Message.Header.NumRequiredSignatures)
	b, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Decode parses wire bytes with solana-go, for checking a signed result.
func Decode(t testing.TB, wire []byte) *solana.Transaction {
	t.Helper()
	tx, err := solana.TransactionFromBytes(wire)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}
