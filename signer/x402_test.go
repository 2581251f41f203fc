package signer_test

import (
	"testing"

	"github.com/chatmcp/chatmcp/signer/signertest"
	"github.com/chatmcp/chatmcp/x402"
)

// TestX402Shape: an `exact` payment as package x402 builds it passes the
// client's payment policy (the agent's key as the transfer's authority)
// and a facilitator's fee-payer-only policy (its key as the fee payer),
// each counting the transfer's amount; the fee-payer key refuses the same
// transfer when it would be its authority too.
func TestX402Shape(t *testing.T) {
	w := newWorld(t)
	_, client := signertest.NewKeypair(t)
	_, facilitator := signertest.NewKeypair(t)
	tx, err := x402.BuildExact(&x402.ExactParams{FeePayer: facilitator, Payer: client, Mint: w.mint, Decimals: 6,
		PayTo: w.recipient, Amount: 10000, Blockhash: signertest.Blockhash})
	if err != nil {
		t.Fatal(err)
	}
	wire, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := evaluate(t, w.policy(t, ""), client, wire); err != nil || v.Amount != 10000 {
		t.Fatalf("client policy: %+v, %v", v, err)
	}
	fee := w.policy(t, "fee_payer_only: true\nmax_compute_unit_limit: 200000\n")
	if v, err := evaluate(t, fee, facilitator, wire); err != nil || v.Amount != 10000 {
		t.Fatalf("fee-payer policy: %+v, %v", v, err)
	}
}
