package signer_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/signer"
	"github.com/chatmcp/chatmcp/signer/signertest"
)

// FuzzParse: the transaction parser never panics on hostile bytes; it
// either fails with ErrMalformed or yields a view whose every instruction
// and transfer refers to accounts of the message, and whose policy
// evaluation does not panic either.
func FuzzParse(f *testing.F) {
	w := newWorld(f)
	f.Add(signertest.Wire(f, w.payer, signertest.ComputeUnitLimit(1), signertest.ComputeUnitPrice(2), signertest.TransferChecked(f, 5, w.payer, w.mint, w.recipient), signertest.Memo("m", w.payer)))
	f.Add(signertest.Wire(f, w.payer, signertest.Transfer(f, 5, w.payer, w.mint, w.recipient), signertest.SOLTransfer(3, w.payer, w.stranger)))
	f.Add(signertest.Wire(f, w.payer, signertest.Approve(f, 5, w.payer, w.mint, w.stranger), signertest.CreateATA(w.payer, w.recipient, w.mint)))
	f.Add([]byte{1})
	p := w.policy(f, "")
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := signer.Parse(b)
		if err != nil {
			if !errors.Is(err, signer.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			// Parse recovers from a decoder panic to fail closed; the
			// fuzzer must still see one.
			if strings.Contains(err.Error(), "decoder panic") {
				t.Fatal(err)
			}
			return
		}
		if len(tx.Signers) == 0 || tx.Signers[0] != tx.FeePayer {
			t.Fatal("no fee payer among the signers")
		}
		p.Evaluate(tx, w.payer)
		p.Evaluate(tx, tx.FeePayer)
	})
}

// FuzzPolicy: the policy parser never panics and a policy it accepts
// evaluates a real transaction without panicking.
func FuzzPolicy(f *testing.F) {
	w := newWorld(f)
	f.Add([]byte(w.policyYAML("")))
	f.Add([]byte(w.policyYAML("fee_payer_only: true\nmax_compute_unit_price: 7\nsign_messages: true\n")))
	f.Add([]byte("window: {period: 1h, max: 1, per_principal: 1}\n"))
	tx, err := signer.Parse(signertest.Wire(f, w.payer, signertest.TransferChecked(f, 5, w.payer, w.mint, w.recipient)))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := signer.ParsePolicy(b)
		if err != nil {
			return
		}
		p.Evaluate(tx, w.payer)
	})
}
