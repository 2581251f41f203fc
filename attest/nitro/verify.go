package nitro

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/veraison/go-cose"
)

// Options configures a Verifier. A nil *Options means all defaults.
type Options struct {
	// Roots are the trusted root certificates. If nil, only the embedded
	// AWS Nitro Enclaves Root G1 is trusted. Tests inject their own root.
	Roots *x509.CertPool
	// Clock returns the verification time when the caller's VerifyOptions
	// leave Now zero. If nil, time.Now.
	Clock func() time.Time
}

// Verifier checks Nitro attestation documents. It holds no mutable state and
// is safe for concurrent use.
type Verifier struct {
	roots *x509.CertPool
	clock func() time.Time
}

var _ attest.Verifier = (*Verifier)(nil)

// NewVerifier returns a Verifier; opts may be nil.
func NewVerifier(opts *Options) *Verifier {
	if opts == nil {
		opts = &Options{}
	}
	v := &Verifier{roots: opts.Roots, clock: opts.Clock}
	if v.roots == nil {
		v.roots = x509.NewCertPool()
		v.roots.AddCert(AWSRoot())
	}
	if v.clock == nil {
		v.clock = time.Now
	}
	return v
}

// TEE returns attest.Nitro.
func (v *Verifier) TEE() attest.TEE { return attest.Nitro }

// Verify parses ev.Report as a COSE_Sign1 attestation document, verifies the
// certificate chain from the document's leaf through its cabundle to a
// trusted root at opts.Now, checks the chain's basic constraints and key
// usages, verifies the ES384 signature with the leaf's key, and returns the
// claims. It applies no policy.
func (v *Verifier) Verify(ctx context.Context, ev *attest.Evidence, opts *attest.VerifyOptions) (*attest.Claims, error) {
	if ev == nil {
		return nil, attest.Errorf(attest.CheckMalformed, "no evidence")
	}
	if ev.TEE != attest.Nitro {
		return nil, attest.Errorf(attest.CheckMalformed, "nitro verifier given %s evidence", ev.TEE)
	}
	if len(ev.Certs) != 0 {
		return nil, attest.Errorf(attest.CheckMalformed, "nitro evidence carries its certificates inside the document, but the envelope has %d more", len(ev.Certs))
	}
	if err := ctx.Err(); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "nitro verification: %w", err)
	}
	now := opts.Time(v.clock)
	a, err := Parse(ev.Report)
	if err != nil {
		return nil, err
	}
	if err := v.VerifyAttestation(a, now); err != nil {
		return nil, err
	}
	return a.Claims(), nil
}

// VerifyAttestation checks a parsed document's chain and signature at now.
func (v *Verifier) VerifyAttestation(a *Attestation, now time.Time) error {
	leaf, err := v.verifyChain(a.Document, now)
	if err != nil {
		return err
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return attest.Errorf(attest.CheckCertificate, "nitro leaf certificate key is %T, want ECDSA P-384", leaf.PublicKey)
	}
	cv, err := cose.NewVerifier(cose.AlgorithmES384, pub)
	if err != nil {
		return attest.Errorf(attest.CheckCertificate, "nitro leaf key: %w", err)
	}
	if err := a.msg.Verify(nil, cv); err != nil {
		return attest.Errorf(attest.CheckSignature, "nitro document signature does not verify with the leaf certificate's key: %w", err)
	}
	return nil
}

// verifyChain returns the leaf once it chains through the cabundle to a
// trusted root at now, with CA certificates marked CA and allowed to sign
// certificates, and the leaf marked not-CA and allowed to sign data.
func (v *Verifier) verifyChain(d *Document, now time.Time) (*x509.Certificate, error) {
	leaf, err := x509.ParseCertificate(d.Certificate)
	if err != nil {
		return nil, attest.Errorf(attest.CheckCertificate, "nitro leaf certificate: %w", err)
	}
	inter := x509.NewCertPool()
	for i, der := range d.CABundle {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, attest.Errorf(attest.CheckCertificate, "nitro cabundle[%d]: %w", i, err)
		}
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   now,
		// Nitro leaves carry no extended key usage.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return nil, attest.Errorf(attest.CheckExpired, "nitro certificate chain at %s: %w", now.UTC().Format(time.RFC3339), err)
		}
		return nil, attest.Errorf(attest.CheckCertificate, "nitro certificate chain does not lead to a trusted root: %w", err)
	}
	var firstErr error
	for _, chain := range chains {
		if err := checkUsage(chain); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return leaf, nil
	}
	return nil, attest.Errorf(attest.CheckCertificate, "nitro certificate chain: %w", firstErr)
}

// checkUsage enforces basicConstraints and keyUsage along chain (leaf first).
// Go's x509 verifier checks that issuers are CAs but ignores keyUsage.
func checkUsage(chain []*x509.Certificate) error {
	leaf := chain[0]
	if leaf.BasicConstraintsValid && leaf.IsCA {
		return fmt.Errorf("leaf %q is a CA certificate", leaf.Subject)
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("leaf %q lacks the digitalSignature key usage", leaf.Subject)
	}
	for _, c := range chain[1:] {
		if !c.BasicConstraintsValid || !c.IsCA {
			return fmt.Errorf("issuer %q is not a CA certificate", c.Subject)
		}
		if c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return fmt.Errorf("issuer %q lacks the keyCertSign key usage", c.Subject)
		}
	}
	return nil
}

// Claims returns the document's normalized claims. Call it only after
// VerifyAttestation succeeded.
func (a *Attestation) Claims() *attest.Claims {
	d := a.Document
	pcrs := make(map[int]attest.Hex, len(d.PCRs))
	for i, p := range d.PCRs {
		pcrs[i] = attest.Hex(p)
	}
	return &attest.Claims{
		TEE:         attest.Nitro,
		Measurement: attest.Hex(d.PCRs[0]),
		ReportData:  attest.Hex(d.UserData),
		Debug:       d.Debug(),
		Time:        d.Timestamp,
		PCRs:        pcrs,
		Nonce:       attest.Hex(d.Nonce),
		PublicKey:   attest.Hex(d.PublicKey),
		Platform:    map[string]string{"module_id": d.ModuleID},
	}
}
