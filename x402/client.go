package x402

import (
	"github.com/gagliardetto/solana-go"
)

// PayExact builds a client's `exact` payment for req: the transfer
// transaction (BuildExact) signed by the payer through sign (a local key,
// or chatmcp-signer), wrapped in a v2 PaymentPayload. decimals are the
// mint's; blockhash a recent one.
func PayExact(req *PaymentRequirements, resource *ResourceInfo, payer solana.PublicKey, sign func([]byte) ([]byte, error), decimals uint8, blockhash solana.Hash) (*PaymentPayload, error) {
	params, err := ParamsFor(req, payer, decimals, blockhash)
	if err != nil {
		return nil, err
	}
	tx, err := BuildExact(params)
	if err != nil {
		return nil, err
	}
	if err := SignAs(tx, payer, sign); err != nil {
		return nil, err
	}
	b64, err := EncodeTransaction(tx)
	if err != nil {
		return nil, err
	}
	return &PaymentPayload{X402Version: Version, Resource: resource, Accepted: *req, Payload: ExactSVMPayload{Transaction: b64}}, nil
}
