// Package verifiers wires every TEE verifier ChatMCP supports into one
// attest.Checker; it is the single place where the set of TEE types a
// process can verify is decided, and it holds no policy.
package verifiers

import (
	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/nitro"
	"github.com/chatmcp/chatmcp/attest/sevsnp"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/attest/tdx"
	"github.com/chatmcp/chatmcp/attest/tpm"
)

// Options carry each TEE verifier's options. A nil *Options, and each nil
// field, means that verifier's defaults: offline, vendor roots embedded in
// the binary.
type Options struct {
	// SEVSNP configures the AMD SEV-SNP verifier. If nil, offline: VCEK and
	// ASK must come with the evidence.
	SEVSNP *sevsnp.Options
	// TDX configures the Intel TDX verifier. If nil, offline: signatures
	// and the PCK chain to Intel's root are checked, no TCB status is
	// claimed.
	TDX *tdx.Options
	// Nitro configures the AWS Nitro Enclaves verifier. If nil, the
	// embedded AWS root.
	Nitro *nitro.Options
	// TPM configures the TPM verifier. If nil, no attestation key is
	// trusted, so every TPM quote is rejected ("certificate").
	TPM *tpm.Options
}

// New returns a Checker with a verifier for every known TEE type,
// including the insecure simulator: whether sim evidence is accepted is the
// policy's decision (attest.Checker consults the allow list before any
// verifier runs), and no default policy allows it.
func New(opts *Options) *attest.Checker {
	if opts == nil {
		opts = &Options{}
	}
	return attest.NewChecker(
		sevsnp.NewVerifier(opts.SEVSNP),
		tdx.NewVerifier(opts.TDX),
		nitro.NewVerifier(opts.Nitro),
		tpm.NewVerifier(opts.TPM),
		sim.NewVerifier(),
	)
}
