// Package x402pay pays x402 `exact` requirements on Solana from one key:
// it checks the requirements against the payer's limits, reads the mint's
// decimals and a recent blockhash over RPC, builds the transfer
// (x402.BuildExact) and has it signed by the payer's key (held here, or by
// chatmcp-signer, which applies its own policy and budget).
package x402pay

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/chatmcp/chatmcp/solrpc"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/gagliardetto/solana-go"
)

// TxSigner adds the payer's signature to a transaction, or refuses.
type TxSigner interface {
	Sign(ctx context.Context, tx *solana.Transaction) error
}

// Payer pays requirements.
type Payer struct {
	// RPC reads decimals and blockhashes. Required.
	RPC *solrpc.Client
	// Address is the payer's key: the authority of its token accounts.
	// Required.
	Address solana.PublicKey
	// Signer signs as Address. Required.
	Signer TxSigner
	// Network is the one CAIP-2 network the payer pays on. Required.
	Network string
	// Assets are the mints the payer pays in. Required: MaxAmount counts
	// atomic units, which mean nothing across mints, so a payee (or a relay
	// in between) naming another mint is refused.
	Assets []string
	// MaxAmount is the most one payment may move, in atomic units of any
	// of Assets. If zero, every payment is refused (fail closed).
	MaxAmount uint64
}

// ErrLimit is wrapped by the error for requirements over the payer's
// limits.
var ErrLimit = errors.New("payment over the payer's limit")

// Pay builds and signs a payment of req.
func (p *Payer) Pay(ctx context.Context, req *x402.PaymentRequirements, resource *x402.ResourceInfo) (*x402.PaymentPayload, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Scheme != x402.SchemeExact || req.Network != p.Network {
		return nil, fmt.Errorf("paying: %s on %s is not %s on %s", req.Scheme, req.Network, x402.SchemeExact, p.Network)
	}
	if !slices.Contains(p.Assets, req.Asset) {
		return nil, fmt.Errorf("%w: asset %s is not one the payer pays in", ErrLimit, req.Asset)
	}
	amount, _ := x402.ParseAmount(req.Amount)
	if amount > p.MaxAmount {
		return nil, fmt.Errorf("%w: %d asked, at most %d", ErrLimit, amount, p.MaxAmount)
	}
	mint, err := solana.PublicKeyFromBase58(req.Asset)
	if err != nil {
		return nil, fmt.Errorf("paying: asset: %w", err)
	}
	acc, err := p.RPC.AccountInfo(ctx, mint.String())
	if err != nil {
		return nil, fmt.Errorf("paying: mint %s: %w", mint, err)
	}
	if acc.Owner != x402.TokenProgram.String() || len(acc.Data) < 45 {
		return nil, fmt.Errorf("paying: %s is not an SPL Token mint", mint)
	}
	decimals := acc.Data[44]
	bh, err := p.RPC.LatestBlockhash(ctx)
	if err != nil {
		return nil, fmt.Errorf("paying: %w", err)
	}
	hash, err := solana.HashFromBase58(bh.Blockhash)
	if err != nil {
		return nil, fmt.Errorf("paying: blockhash: %w", err)
	}
	params, err := x402.ParamsFor(req, p.Address, decimals, hash)
	if err != nil {
		return nil, err
	}
	tx, err := x402.BuildExact(params)
	if err != nil {
		return nil, err
	}
	if err := p.Signer.Sign(ctx, tx); err != nil {
		return nil, fmt.Errorf("paying: %w", err)
	}
	b64, err := x402.EncodeTransaction(tx)
	if err != nil {
		return nil, err
	}
	return &x402.PaymentPayload{X402Version: x402.Version, Resource: resource, Accepted: *req, Payload: x402.ExactSVMPayload{Transaction: b64}}, nil
}

// WalletSigner signs with a wallet key held in this process (the chat
// wallet, a keypair file).
type WalletSigner struct{ Keypair *wallet.Keypair }

// Sign implements TxSigner.
func (w WalletSigner) Sign(_ context.Context, tx *solana.Transaction) error {
	pub := solana.PublicKeyFromBytes(w.Keypair.Address().PublicKey())
	return x402.SignAs(tx, pub, func(m []byte) ([]byte, error) { return w.Keypair.Sign(m), nil })
}
