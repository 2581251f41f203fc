package nitro_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"os"
	"path/filepath"
	"testing"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/nitro"
	"github.com/chatmcp/chatmcp/attest/nitro/internal/fake"
)

// BenchmarkVerify measures full verification of the real Nitro document
// (COSE parse, payload decode, certificate parsing, a four-certificate chain
// to the AWS root, the ES384 signature) against its baseline, one ECDSA
// P-384 verification, in the same run. docs/BENCHMARKS.md reports the ratio.
func BenchmarkVerify(b *testing.B) {
	b.Run("document", func(b *testing.B) {
		doc, err := os.ReadFile(filepath.Join(vectorsNoSkip(), "nitro_attestation.cose"))
		if err != nil {
			b.Skipf("Nitro vector not found: %v", err)
		}
		v := nitro.NewVerifier(nil)
		ev := evidence(doc)
		opts := &attest.VerifyOptions{Now: realTime}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, ev, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("es384-baseline", func(b *testing.B) {
		k := fake.P384(b)
		digest := sha512.Sum384([]byte("one ES384 verification"))
		sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if !ecdsa.VerifyASN1(&k.PublicKey, digest[:], sig) {
				b.Fatal("verification failed")
			}
		}
	})
}
