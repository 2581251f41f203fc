package tpm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/tpm"
	"github.com/chatmcp/chatmcp/attest/tpm/internal/fake"
)

// BenchmarkVerify measures TPM quote verification (CBOR decode, TPM structure
// decoding, AK lookup, signature, PCR digest over 8 PCRs) against its raw
// signature primitive in the same run, for an ECDSA P-256 and an RSA-2048 AK.
// docs/BENCHMARKS.md reports the ratios.
func BenchmarkVerify(b *testing.B) {
	ecKey := fake.P256(b)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("one signature"))
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{{"p256", ecKey}, {"rsa2048", rsaKey}} {
		b.Run("quote-"+tc.name, func(b *testing.B) {
			ev := &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.TPM,
				Report: fake.Encode(b, fake.NewBuilder(tc.key, make([]byte, 64)).Build(b))}
			v := tpm.NewVerifier(&tpm.Options{TrustedAKs: []crypto.PublicKey{tc.key.Public()}})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, ev, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("baseline-p256", func(b *testing.B) {
		sig, err := ecdsa.SignASN1(rand.Reader, ecKey, digest[:])
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if !ecdsa.VerifyASN1(&ecKey.PublicKey, digest[:], sig) {
				b.Fatal("verification failed")
			}
		}
	})
	b.Run("baseline-rsa2048", func(b *testing.B) {
		sig, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, digest[:])
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}
