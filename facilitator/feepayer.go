package facilitator

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/gagliardetto/solana-go"
)

// FeePayer is the key that co-signs `exact` transactions as their fee
// payer. The facilitator calls Sign only with a transaction that
// x402.VerifyExactSVM accepted (the shape documented in package x402), so
// a signer enforcing that shape in its own policy refuses nothing the
// facilitator asks for honestly.
type FeePayer interface {
	// PublicKey is the fee payer's address (extra.feePayer).
	PublicKey() solana.PublicKey
	// Sign adds the fee payer's signature to tx (at index 0), or refuses.
	Sign(ctx context.Context, tx *solana.Transaction) error
}

// LocalKey is a FeePayer holding its ed25519 key in this process (tests
// and development; in production the key lives in chatmcp-signer).
type LocalKey struct{ Key ed25519.PrivateKey }

// PublicKey implements FeePayer.
func (k LocalKey) PublicKey() solana.PublicKey {
	return solana.PublicKeyFromBytes(k.Key.Public().(ed25519.PublicKey))
}

// Sign implements FeePayer.
func (k LocalKey) Sign(_ context.Context, tx *solana.Transaction) error {
	if err := x402.SignAs(tx, k.PublicKey(), x402.KeySigner(k.Key)); err != nil {
		return fmt.Errorf("fee payer: %w", err)
	}
	return nil
}

// WalletKey is a FeePayer from a solana-keygen keypair file's key
// (chatmcp-facilitator --fee-payer-key; development and tests).
type WalletKey struct{ Keypair *wallet.Keypair }

// PublicKey implements FeePayer.
func (k WalletKey) PublicKey() solana.PublicKey {
	return solana.PublicKeyFromBytes(k.Keypair.Address().PublicKey())
}

// Sign implements FeePayer.
func (k WalletKey) Sign(_ context.Context, tx *solana.Transaction) error {
	if err := x402.SignAs(tx, k.PublicKey(), func(m []byte) ([]byte, error) { return k.Keypair.Sign(m), nil }); err != nil {
		return fmt.Errorf("fee payer: %w", err)
	}
	return nil
}
