package x402pay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/gagliardetto/solana-go"
)

// Remote signs through chatmcp-signer: the key stays in the signer's
// enclave, which applies its policy and budgets (a payer's payment policy,
// or a facilitator's fee_payer_only policy) and may hold the request for a
// person. It is a TxSigner for a Payer and a facilitator.FeePayer.
type Remote struct {
	// Client reaches the signer, with its capability token and an RA-TLS
	// http.Client. Required.
	Client *signerclient.Client
	// Key is the signer's address (GET /v1/pubkey). Required.
	Key solana.PublicKey
}

// NewRemote asks the signer for its address.
func NewRemote(ctx context.Context, c *signerclient.Client) (*Remote, error) {
	pk, err := c.Pubkey(ctx)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	key, err := solana.PublicKeyFromBase58(pk.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("signer: its public key: %w", err)
	}
	return &Remote{Client: c, Key: key}, nil
}

// PublicKey is the signer's address.
func (r *Remote) PublicKey() solana.PublicKey { return r.Key }

// Sign sends tx to the signer and takes its signature back into tx, after
// checking that the signer signed this very message with Key.
func (r *Remote) Sign(ctx context.Context, tx *solana.Transaction) error {
	wire, err := tx.MarshalBinary()
	if err != nil {
		return err
	}
	msg, err := tx.Message.MarshalBinary()
	if err != nil {
		return err
	}
	resp, err := r.Client.SignTransaction(ctx, wire)
	if err != nil {
		return err
	}
	signed, err := solana.TransactionFromBytes(resp.Transaction)
	if err != nil {
		return fmt.Errorf("signer answered a malformed transaction: %w", err)
	}
	smsg, err := signed.Message.MarshalBinary()
	if err != nil || !bytes.Equal(smsg, msg) {
		return fmt.Errorf("signer answered another transaction than the one sent")
	}
	for i := range tx.Signatures {
		if i < len(tx.Message.AccountKeys) && tx.Message.AccountKeys[i].Equals(r.Key) && i < len(signed.Signatures) {
			sig := signed.Signatures[i]
			if !ed25519.Verify(r.Key[:], msg, sig[:]) {
				return fmt.Errorf("signer's signature does not verify")
			}
			tx.Signatures[i] = sig
			return nil
		}
	}
	return fmt.Errorf("%s is not a signer of the transaction", r.Key)
}
