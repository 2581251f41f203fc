package sevsnp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"testing"

	"github.com/chatmcp/chatmcp/attest"
)

// BenchmarkVerifyCached verifies the real report repeatedly with its VCEK
// chain cached: parse, cache lookup, claims and one P-384 verify. Compare
// with BenchmarkP384Verify (the budget is 1.5x).
func BenchmarkVerifyCached(b *testing.B) {
	ev := realEvidence(b)
	v := NewVerifier(nil)
	ctx := context.Background()
	opts := &attest.VerifyOptions{Now: vectorTime}
	if _, err := v.Verify(ctx, ev, opts); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, ev, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached verifies the real report with a fresh verifier
// each time: the full go-sev-guest chain walk.
func BenchmarkVerifyUncached(b *testing.B) {
	ev := realEvidence(b)
	ctx := context.Background()
	opts := &attest.VerifyOptions{Now: vectorTime}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewVerifier(nil).Verify(ctx, ev, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkP384Verify is the baseline: one ecdsa.Verify with P-384 over a
// SHA-384 digest of as many bytes as a report signs.
func BenchmarkP384Verify(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha512.Sum384(make([]byte, signedSize))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &key.PublicKey
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.Verify(pub, digest[:], r, s) {
			b.Fatal("verify failed")
		}
	}
}
