package tdx

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/google/go-tdx-guest/verify"
)

// Verify parses ev's quote and checks, with go-tdx-guest: the PCK
// certificate chain (carried in the quote) up to the trusted root at
// opts.Now, the QE report's signature by the PCK key, that the QE report
// binds the attestation key, and the quote's signature by the attestation
// key over the header and TD quote body. When the verifier is online it also
// fetches Intel's collateral, checks it and the revocation lists, and
// requires the TDX and QE TCB levels to be UpToDate. It returns the claims
// and applies no policy.
func (v *Verifier) Verify(ctx context.Context, ev *attest.Evidence, opts *attest.VerifyOptions) (*attest.Claims, error) {
	if ev == nil {
		return nil, attest.Errorf(attest.CheckMalformed, "no evidence")
	}
	if ev.TEE != attest.TDX {
		return nil, attest.Errorf(attest.CheckMalformed, "%s evidence given to the TDX verifier", ev.TEE)
	}
	q, err := ParseQuote(ev.Report)
	if err != nil {
		return nil, err
	}
	t := opts.Time(nil)
	chain, err := verify.ExtractChainFromQuote(q.Proto)
	if err != nil {
		return nil, attest.Errorf(attest.CheckCertificate, "TDX quote PCK certificate chain: %w", err)
	}
	roots := v.roots
	if roots == nil {
		sum := sha256.Sum256(chain.RootCertificate.Raw)
		if hex.EncodeToString(sum[:]) != IntelSGXRootCAHash {
			return nil, attest.Errorf(attest.CheckCertificate, "the quote's root certificate (subject %s) is not Intel's SGX Root CA: its SHA-256 is not %s", chain.RootCertificate.Subject, IntelSGXRootCAHash)
		}
		roots = x509.NewCertPool()
		roots.AddCert(chain.RootCertificate)
	}
	for _, c := range []struct {
		name string
		cert *x509.Certificate
	}{{"PCK", chain.PCKCertificate}, {"PCK issuer", chain.IntermediateCertificate}, {"root", chain.RootCertificate}} {
		if t.Before(c.cert.NotBefore) || t.After(c.cert.NotAfter) {
			return nil, attest.Errorf(attest.CheckExpired, "TDX %s certificate is valid from %s to %s, not at %s", c.name,
				c.cert.NotBefore.UTC().Format(time.RFC3339), c.cert.NotAfter.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
		}
	}
	online := v.getter != nil
	vopts := &verify.Options{
		GetCollateral:    online,
		CheckRevocations: online,
		Getter:           v.getter,
		Now:              &verify.TimeSet{PckCertChain: t, TcbInfo: t, QeIdentity: t, PckCrl: t, RootCaCrl: t},
		TrustedRoots:     roots,
	}
	if err := verify.TdxQuoteContext(ctx, q.Proto, vopts); err != nil {
		return nil, classify(err)
	}
	status := ""
	if online {
		tcb, qe, err := verify.SupportedTcbLevelsFromCollateral(q.Proto, vopts)
		if err != nil {
			return nil, attest.Errorf(attest.CheckTCB, "TDX TCB status: %w", err)
		}
		status = string(tcb.TcbStatus)
		if qs := string(qe.TcbStatus); qs != status {
			// Both are UpToDate when verification passed; say so if
			// go-tdx-guest ever lets another status through.
			status += "/QE:" + qs
		}
	}
	return claims(q, status), nil
}

// classify maps a go-tdx-guest (v0.3.2) verification error to the check
// that failed. It wraps most causes with %v, so besides its sentinel errors
// the messages of its wrapping steps are matched.
func classify(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, verify.ErrHashVerificationFail),
		errors.Is(err, verify.ErrSHA56VerificationFail),
		strings.Contains(msg, "attestation key in the quote is invalid"),
		strings.Contains(msg, "error verifying QE report signature"),
		strings.Contains(msg, "error verifying QE report data"):
		return attest.Errorf(attest.CheckSignature, "TDX quote: %w", err)
	case strings.Contains(msg, "failed TCB status check"):
		return attest.Errorf(attest.CheckTCB, "TDX quote: %w", err)
	case strings.Contains(msg, "has expired"):
		return attest.Errorf(attest.CheckExpired, "TDX quote: %w", err)
	}
	return attest.Errorf(attest.CheckCertificate, "TDX quote: %w", err)
}
