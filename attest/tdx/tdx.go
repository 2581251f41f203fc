// Package tdx verifies Intel TDX quotes (version 4): it parses the quote,
// checks its ECDSA P-256 signature, the QE report and the PCK certificate
// chain up to Intel's SGX root, and, when online, the TCB status from
// Intel's collateral, and returns normalized claims; it applies no policy
// and never touches the TDX guest device (see package tdx/device for that).
package tdx

import (
	"crypto/x509"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/google/go-tdx-guest/verify/trust"
)

// Options configure a Verifier. A nil *Options is the same as the zero
// value: offline, Intel's root.
type Options struct {
	// Getter fetches Intel's collateral (TCB info, QE identity, PCK and root
	// CRLs) from the Intel PCS, so that the TCB status is checked and
	// reported and revocation is checked. If nil, the verifier is offline:
	// it checks signatures and the certificate chain only, and claims no
	// TCB status.
	Getter trust.HTTPSGetter
	// Roots are the trusted root certificates for the PCK chain. If nil,
	// Intel's SGX Root CA, recognised by the SHA-256 of its DER bytes
	// (IntelSGXRootCAHash), is the only root.
	Roots *x509.CertPool
}

// IntelSGXRootCAHash is the SHA-256 of the DER bytes of Intel's "Intel SGX
// Root CA" certificate (valid 2018 to 2049), the root of every PCK chain. It
// is the certificate github.com/google/go-tdx-guest embeds; the verifier
// pins it by hash so that the root a quote carries is trusted only when it
// is exactly this certificate.
const IntelSGXRootCAHash = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

// Verifier verifies TDX evidence. It implements attest.Verifier, holds no
// mutable state and is safe for concurrent use.
type Verifier struct {
	getter trust.HTTPSGetter
	roots  *x509.CertPool
}

var _ attest.Verifier = (*Verifier)(nil)

// NewVerifier returns a Verifier configured by opts, which may be nil.
func NewVerifier(opts *Options) *Verifier {
	if opts == nil {
		opts = &Options{}
	}
	return &Verifier{getter: opts.Getter, roots: opts.Roots}
}

// TEE returns attest.TDX.
func (v *Verifier) TEE() attest.TEE { return attest.TDX }
