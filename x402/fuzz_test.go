package x402_test

import (
	"encoding/base64"
	"testing"

	"github.com/chatmcp/chatmcp/x402"
	"github.com/gagliardetto/solana-go"
)

// The decoders of untrusted x402 input: headers (base64 JSON), _meta
// members and facilitator bodies (JSON), and Solana wire transactions.
// None may panic; whatever they accept must re-encode and decode again.

func FuzzDecodePaymentPayload(f *testing.F) {
	p := payment(f, requirements())
	h, _ := x402.EncodeHeader(p)
	f.Add(h)
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2}`)))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := x402.DecodePaymentPayload(s)
		if err != nil {
			return
		}
		h, err := x402.EncodeHeader(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x402.DecodePaymentPayload(h); err != nil {
			t.Fatalf("re-encoded payment does not decode: %v", err)
		}
	})
}

func FuzzDecodePaymentRequired(f *testing.F) {
	h, _ := x402.EncodeHeader(&x402.PaymentRequired{X402Version: 2, Resource: &x402.ResourceInfo{URL: "u"}, Accepts: []x402.PaymentRequirements{*requirements()}})
	f.Add(h)
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"accepts":[{}]}`)))
	f.Fuzz(func(t *testing.T, s string) {
		pr, err := x402.DecodePaymentRequired(s)
		if err != nil {
			return
		}
		if err := pr.Validate(); err != nil {
			t.Fatalf("accepted an invalid PaymentRequired: %v", err)
		}
	})
}

func FuzzDecodeV1Payment(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":1,"scheme":"exact","network":"solana-devnet","payload":{"transaction":"AA=="}}`)))
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":1,"scheme":"exact","network":"solana","payload":"AA=="}`)))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := x402.DecodeV1Payment(s)
		if err == nil && (p.X402Version != 1 || p.Payload.Transaction == "") {
			t.Fatalf("accepted %+v", p)
		}
	})
}

func FuzzDecodePaymentJSON(f *testing.F) {
	p := payment(f, requirements())
	m, _ := x402.ToMeta(p)
	b, _ := x402.EncodeHeader(m)
	raw, _ := base64.StdEncoding.DecodeString(b)
	f.Add(raw)
	f.Add([]byte(`{"x402Version":2,"accepted":{},"payload":{"transaction":"x"},"extensions":{"payment-identifier":{"info":{"required":true}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		x402.DecodePaymentJSON(b)
		x402.RequiredFromResult(nil, string(b))
	})
}

func FuzzDecodeTransaction(f *testing.F) {
	p := payment(f, requirements())
	raw, _ := base64.StdEncoding.DecodeString(p.Payload.Transaction)
	f.Add(raw)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		b64 := base64.StdEncoding.EncodeToString(b)
		tx, err := x402.DecodeTransaction(b64)
		if err != nil {
			return
		}
		out, err := tx.MarshalBinary()
		if err != nil || string(out) != string(b) {
			t.Fatalf("accepted a transaction that does not re-encode to its bytes")
		}
		// Every rule must run on whatever decodes, without panicking.
		q := *p
		q.Payload.Transaction = b64
		x402.VerifyExactSVM(&q, requirements(), []solana.PublicKey{feePayer}, nil)
	})
}
