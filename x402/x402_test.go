package x402_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/x402"
	"github.com/gagliardetto/solana-go"
	"github.com/google/go-cmp/cmp"
)

func key(seed byte) (solana.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(append(make([]byte, 31), seed))
	return solana.PublicKeyFromBytes(priv.Public().(ed25519.PublicKey)), priv
}

var (
	feePayer, _     = key(1)
	payer, payerKey = key(2)
	payTo, _        = key(3)
	mint, _         = key(4)
)

func requirements() *x402.PaymentRequirements {
	return &x402.PaymentRequirements{Scheme: x402.SchemeExact, Network: x402.SolanaDevnet, Amount: "1000000",
		Asset: mint.String(), PayTo: payTo.String(), MaxTimeoutSeconds: 60, Extra: &x402.Extra{FeePayer: feePayer.String()}}
}

func payment(t testing.TB, req *x402.PaymentRequirements) *x402.PaymentPayload {
	p, err := x402.PayExact(req, &x402.ResourceInfo{URL: "mcp://tool/t"}, payer, x402.KeySigner(payerKey), 6, solana.Hash{9})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHeadersRoundTrip(t *testing.T) {
	req := requirements()
	pr := &x402.PaymentRequired{X402Version: 2, Error: "payment required", Resource: &x402.ResourceInfo{URL: "mcp://tool/t"}, Accepts: []x402.PaymentRequirements{*req}}
	h, err := x402.EncodeHeader(pr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := x402.DecodePaymentRequired(h)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pr, got); diff != "" {
		t.Errorf("PaymentRequired (-want +got):\n%s", diff)
	}
	p := payment(t, req)
	x402.WithPaymentID(p, "pay_0123456789abcdef")
	h, _ = x402.EncodeHeader(p)
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set(x402.HeaderPaymentSignature, h)
	r.Header.Set(x402.HeaderV1Payment, "ignored when PAYMENT-SIGNATURE is present")
	gotP, err := x402.PaymentFromRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := x402.PaymentID(gotP); id != "pay_0123456789abcdef" || gotP.Payload.Transaction != p.Payload.Transaction {
		t.Errorf("payment round trip: id %q", id)
	}
	sr := &x402.SettleResponse{Success: true, Transaction: "sig", Network: x402.SolanaDevnet, Payer: payer.String()}
	h, _ = x402.EncodeHeader(sr)
	gotS, err := x402.DecodeSettleResponse(h)
	if err != nil || *gotS != *sr {
		t.Errorf("settle response: %+v, %v", gotS, err)
	}
	r, _ = http.NewRequest("GET", "/", nil)
	if p, err := x402.PaymentFromRequest(r); p != nil || err != nil {
		t.Errorf("no header: %v, %v", p, err)
	}
}

// TestV1Payment: v1's X-PAYMENT is accepted on input, both payload forms,
// its network mapped to CAIP-2 and its requirements completed by Match.
func TestV1Payment(t *testing.T) {
	req := requirements()
	tx := payment(t, req).Payload.Transaction
	for name, js := range map[string]string{
		"object": `{"x402Version":1,"scheme":"exact","network":"solana-devnet","payload":{"transaction":"` + tx + `"}}`,
		"string": `{"x402Version":1,"scheme":"exact","network":"solana-devnet","payload":"` + tx + `"}`,
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set(x402.HeaderV1Payment, base64.StdEncoding.EncodeToString([]byte(js)))
		p, err := x402.PaymentFromRequest(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.X402Version != 1 || p.Accepted.Network != x402.SolanaDevnet || p.Payload.Transaction != tx {
			t.Errorf("%s: %+v", name, p)
		}
		if m, err := x402.Match(p, []x402.PaymentRequirements{*req}); err != nil || !p.Accepted.Equal(m) {
			t.Errorf("%s: Match: %v", name, err)
		}
	}
}

func TestDecodeRefusals(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	good := `{"scheme":"exact","network":"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1","amount":"10","asset":"A","payTo":"B","maxTimeoutSeconds":60}`
	for name, c := range map[string]struct {
		header, want string
	}{
		"not base64":         {"%%%", "not base64"},
		"too long":           {strings.Repeat("A", x402.MaxHeader+1), "longer than"},
		"unknown member":     {enc(`{"x402Version":2,"resource":{"url":"u"},"accepts":[` + good + `],"surprise":1}`), "unknown"},
		"duplicate member":   {enc(`{"x402Version":2,"x402Version":2,"resource":{"url":"u"},"accepts":[` + good + `]}`), "duplicate"},
		"version 1":          {enc(`{"x402Version":1,"resource":{"url":"u"},"accepts":[` + good + `]}`), "x402Version 1"},
		"no accepts":         {enc(`{"x402Version":2,"resource":{"url":"u"},"accepts":[]}`), "0 accepted"},
		"v1 network name":    {enc(`{"x402Version":2,"resource":{"url":"u"},"accepts":[` + strings.Replace(good, "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "solana-devnet", 1) + `]}`), "CAIP-2"},
		"leading zero":       {enc(`{"x402Version":2,"resource":{"url":"u"},"accepts":[` + strings.Replace(good, `"10"`, `"010"`, 1) + `]}`), "canonical"},
		"amount over 64 bit": {enc(`{"x402Version":2,"resource":{"url":"u"},"accepts":[` + strings.Replace(good, `"10"`, `"18446744073709551616"`, 1) + `]}`), "64 bits"},
		"zero amount":        {enc(`{"x402Version":2,"resource":{"url":"u"},"accepts":[` + strings.Replace(good, `"10"`, `"0"`, 1) + `]}`), "zero"},
	} {
		_, err := x402.DecodePaymentRequired(c.header)
		if err == nil || !errors.Is(err, x402.ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want malformed naming %q", name, err, c.want)
		}
	}
	if _, err := x402.DecodePaymentPayload(enc(`{"x402Version":2,"accepted":` + good + `,"payload":{"transaction":""}}`)); err == nil {
		t.Error("empty transaction accepted")
	}
	p := payment(t, requirements())
	p.Extensions = map[string]x402.Extension{x402.ExtPaymentIdentifier: {Info: []byte(`{"required":false,"id":"short"}`)}}
	h, _ := x402.EncodeHeader(p)
	if _, err := x402.DecodePaymentPayload(h); err == nil || !strings.Contains(err.Error(), "16-128") {
		t.Errorf("short payment identifier: %v", err)
	}
	if _, err := x402.DecodeV1Payment(enc(`{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":"x"}`)); err == nil {
		t.Error("unknown v1 network accepted")
	}
}

func TestNetwork(t *testing.T) {
	for _, ok := range []string{x402.SolanaMainnet, x402.SolanaDevnet, x402.SolanaLocal, "eip155:8453"} {
		if _, err := x402.ParseNetwork(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "solana", "so:x", "Solana:x", "solana:", "solana:" + strings.Repeat("a", 33), "solana:a/b"} {
		if _, err := x402.ParseNetwork(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if id, err := x402.NetworkFromV1("solana"); err != nil || id != x402.SolanaMainnet {
		t.Errorf("v1 solana: %s, %v", id, err)
	}
}

// TestMCPTransport: payment required as structuredContent and the same
// JSON as text; payment and receipt in _meta.
func TestMCPTransport(t *testing.T) {
	req := requirements()
	pr := &x402.PaymentRequired{X402Version: 2, Error: "payment required", Resource: &x402.ResourceInfo{URL: "mcp://tool/t"}, Accepts: []x402.PaymentRequirements{*req}}
	structured, text, err := x402.RequiredResult(pr)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]func() (*x402.PaymentRequired, error){
		"structured": func() (*x402.PaymentRequired, error) { return x402.RequiredFromResult(structured, "") },
		"text":       func() (*x402.PaymentRequired, error) { return x402.RequiredFromResult(nil, text) },
	} {
		g, err := got()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(pr, g); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if g, err := x402.RequiredFromResult(nil, "an ordinary tool error"); g != nil || err != nil {
		t.Errorf("ordinary error result: %v, %v", g, err)
	}
	p := payment(t, req)
	m, err := x402.ToMeta(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := x402.PaymentFromMeta(map[string]any{x402.MetaPayment: m})
	if err != nil || got.Payload.Transaction != p.Payload.Transaction {
		t.Fatalf("payment from _meta: %v", err)
	}
	if got, err := x402.PaymentFromMeta(map[string]any{"other": 1}); got != nil || err != nil {
		t.Errorf("no payment: %v, %v", got, err)
	}
	if _, err := x402.PaymentFromMeta(map[string]any{x402.MetaPayment: "not an object"}); err == nil {
		t.Error("a string payment was accepted")
	}
	sm, _ := x402.ToMeta(&x402.SettleResponse{Success: true, Transaction: "s", Network: x402.SolanaDevnet})
	if sr, err := x402.SettleFromMeta(map[string]any{x402.MetaPaymentResponse: sm}); err != nil || !sr.Success {
		t.Errorf("receipt: %+v, %v", sr, err)
	}
}

// TestVerifyOffline: the client's transaction passes every rule that
// needs no chain; tampering with its bytes breaks the payer's signature
// or the strict decoding.
func TestVerifyOffline(t *testing.T) {
	req := requirements()
	p := payment(t, req)
	tr, err := x402.VerifyExactSVM(p, req, []solana.PublicKey{feePayer}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Payer.Equals(payer) || tr.Amount != 1_000_000 || len(tr.Memo) != 32 {
		t.Errorf("transfer: %+v", tr)
	}
	raw, _ := base64.StdEncoding.DecodeString(p.Payload.Transaction)
	check := func(name string, b []byte, reason string) {
		q := *p
		q.Payload.Transaction = base64.StdEncoding.EncodeToString(b)
		_, err := x402.VerifyExactSVM(&q, req, []solana.PublicKey{feePayer}, nil)
		var r *x402.Refusal
		if !errors.As(err, &r) || r.Reason != reason {
			t.Errorf("%s: %v, want %s", name, err, reason)
		}
	}
	check("trailing byte", append(append([]byte{}, raw...), 0), x402.ReasonTxDecode)
	check("truncated", raw[:len(raw)-1], x402.ReasonTxDecode)
	flipped := append([]byte{}, raw...)
	flipped[len(flipped)-1] ^= 1 // the memo's last byte: still hex, signature broken
	check("memo changed after signing", flipped, x402.ReasonPayerSignature)
	if _, err := x402.VerifyExactSVM(p, req, []solana.PublicKey{payTo}, nil); err == nil {
		t.Error("a fee payer the facilitator does not hold was accepted")
	}
}
