package captoken

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
	"time"
)

// BenchmarkVerify verifies a token with three caveats, the shape a delegated
// token has in practice: decode, four HMACs, audience, expiry, revocation.
func BenchmarkVerify(b *testing.B) {
	k := testKey(b)
	tok := mint(b, k, "fs_*", "everything_*")
	tok = attenuate(b, tok, Caveat{Tools: []string{"fs_read_*", "everything_echo"}})
	tok = attenuate(b, tok, Caveat{Expires: t0.Add(30 * time.Minute)})
	tok = attenuate(b, tok, Caveat{Args: []ArgConstraint{{Tool: "fs_*", Arg: "path", Values: []string{"/srv/*"}}}})
	v := verifier(k)
	ctx := context.Background()
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHMAC is the baseline: one HMAC-SHA256 over as many bytes as the
// token in BenchmarkVerify.
func BenchmarkHMAC(b *testing.B) {
	k := testKey(b)
	tok := mint(b, k, "fs_*", "everything_*")
	tok = attenuate(b, tok, Caveat{Tools: []string{"fs_read_*", "everything_echo"}})
	tok = attenuate(b, tok, Caveat{Expires: t0.Add(30 * time.Minute)})
	tok = attenuate(b, tok, Caveat{Args: []ArgConstraint{{Tool: "fs_*", Arg: "path", Values: []string{"/srv/*"}}}})
	msg := []byte(tok)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		m := hmac.New(sha256.New, k.k[:])
		m.Write(msg)
		m.Sum(nil)
	}
}
