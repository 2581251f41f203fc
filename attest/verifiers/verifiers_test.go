package verifiers

import (
	"context"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/attest"
)

func TestNewWiresEveryVerifier(t *testing.T) {
	c := New(nil)
	all := &attest.Policy{Allow: attest.KnownTEEs()}
	for _, tee := range attest.KnownTEEs() {
		t.Run(string(tee), func(t *testing.T) {
			ev := &attest.Evidence{Version: attest.EnvelopeVersion, TEE: tee, Report: []byte("not evidence")}
			_, err := c.Check(context.Background(), ev, all, nil)
			if err == nil {
				t.Fatal("garbage evidence accepted")
			}
			if strings.Contains(err.Error(), "no verifier") {
				t.Fatalf("%s has no verifier: %v", tee, err)
			}
			if check, _ := attest.CheckOf(err); !check.Invalid() {
				t.Fatalf("garbage evidence rejected with %v, want an invalid-evidence check", err)
			}
		})
	}
}

func TestSimNotAllowedByDefault(t *testing.T) {
	c := New(nil)
	p := &attest.Policy{Allow: []attest.TEE{attest.SEVSNP, attest.TDX, attest.Nitro, attest.TPM}}
	ev := &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.Sim, Report: []byte("{}")}
	if _, err := c.Check(context.Background(), ev, p, nil); !strings.HasPrefix(err.Error(), "not allowed: ") {
		t.Fatalf("sim under a policy without sim: %v", err)
	}
}
