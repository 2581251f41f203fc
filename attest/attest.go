// Package attest defines the TEE-independent parts of remote attestation:
// the evidence envelope, normalized claims, the verifier and attester
// interfaces, report-data binding and the one policy format every TEE shares.
//
// Verification runs in a fixed order: the policy's allow list is consulted
// first (so bytes of a TEE type the policy does not accept are never parsed),
// then the TEE's Verifier parses the evidence and checks its signatures and
// certificate chain, producing Claims, and only then is the policy evaluated
// over those Claims. Vendor code lives in one package per TEE (attest/sevsnp,
// attest/tdx, attest/nitro, attest/tpm, attest/sim); this package imports none
// of them.
package attest

import (
	"context"
	"time"
)

// TEE names a kind of trusted execution environment.
type TEE string

// The TEE types ChatMCP knows. Sim is an insecure software simulator.
const (
	SEVSNP TEE = "sevsnp"
	TDX    TEE = "tdx"
	Nitro  TEE = "nitro"
	TPM    TEE = "tpm"
	Sim    TEE = "sim"
)

// KnownTEEs lists every TEE type in a stable order.
func KnownTEEs() []TEE { return []TEE{SEVSNP, TDX, Nitro, TPM, Sim} }

// Valid reports whether t is one of the known TEE types.
func (t TEE) Valid() bool {
	for _, k := range KnownTEEs() {
		if t == k {
			return true
		}
	}
	return false
}

// VerifyOptions carries what a Verifier needs from its caller for one call.
type VerifyOptions struct {
	// Now is the time at which certificates and timestamps are judged.
	// If zero, the verifier uses time.Now().
	Now time.Time
}

// Time returns the verification time: o.Now, or clock() when o is nil or
// Now is zero. A nil clock means time.Now. Every Verifier resolves its
// time here, so "zero means now" holds the same way for all of them.
func (o *VerifyOptions) Time(clock func() time.Time) time.Time {
	if o != nil && !o.Now.IsZero() {
		return o.Now
	}
	if clock == nil {
		return time.Now()
	}
	return clock()
}

// Verifier checks one TEE type's evidence. Verify parses ev, checks its
// signatures and certificate chain up to the vendor root at opts.Now, and
// returns the normalized claims. It applies no policy: measurement, debug,
// VMPL, TCB and report-data checks belong to Policy.Evaluate. Every error it
// returns is an *Error whose Check says what failed.
type Verifier interface {
	TEE() TEE
	Verify(ctx context.Context, ev *Evidence, opts *VerifyOptions) (*Claims, error)
}

// Attester produces evidence from a TEE, binding reportData into it.
type Attester interface {
	TEE() TEE
	Attest(ctx context.Context, reportData [ReportDataSize]byte) (*Evidence, error)
}
