package x402_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/x402"
	"github.com/gagliardetto/solana-go"
)

// BenchmarkEd25519Verify is the baseline: the one signature check a
// facilitator's verification must make (the payer's).
func BenchmarkEd25519Verify(b *testing.B) {
	p := payment(b, requirements())
	tx, _ := x402.DecodeTransaction(p.Payload.Transaction)
	msg, _ := tx.Message.MarshalBinary()
	for b.Loop() {
		if !ed25519.Verify(payer[:], msg, tx.Signatures[1][:]) {
			b.Fatal("no")
		}
	}
}

// BenchmarkVerifyExactSVM is the facilitator's verification without the
// chain: strict decoding, every rule of the spec (two ATA derivations) and
// the payer's signature. The RPC calls (account existence, simulation) are
// not included.
func BenchmarkVerifyExactSVM(b *testing.B) {
	req := requirements()
	p := payment(b, req)
	fps := []solana.PublicKey{feePayer}
	for b.Loop() {
		if _, err := x402.VerifyExactSVM(p, req, fps, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePaymentHeader: a PAYMENT-SIGNATURE header to a checked
// PaymentPayload (base64, strict JSON).
func BenchmarkDecodePaymentHeader(b *testing.B) {
	h, _ := x402.EncodeHeader(payment(b, requirements()))
	for b.Loop() {
		if _, err := x402.DecodePaymentPayload(h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRatio interleaves the two above in one loop, so that
// both see the same load on a shared machine, and reports the ratio of
// VerifyExactSVM's time to one ed25519 verification's.
func BenchmarkVerifyRatio(b *testing.B) {
	req := requirements()
	p := payment(b, req)
	tx, _ := x402.DecodeTransaction(p.Payload.Transaction)
	msg, _ := tx.Message.MarshalBinary()
	fps := []solana.PublicKey{feePayer}
	var tv, te time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := x402.VerifyExactSVM(p, req, fps, nil); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if !ed25519.Verify(payer[:], msg, tx.Signatures[1][:]) {
			b.Fatal("no")
		}
		te += time.Since(t1)
		tv += t1.Sub(t0)
	}
	b.ReportMetric(float64(tv)/float64(te), "verify/ed25519")
}
