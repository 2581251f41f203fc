package sevsnp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
)

// Verify parses ev's report, finds the certificate of the key that signed
// it (in ev.Certs, the cache directory or AMD's KDS), checks that key's chain
// to a trusted AMD root (once per key: see Verifier) and that the chain is
// valid at opts.Now, checks the report's signature, checks that the key was
// issued for this product line, chip and reported TCB, and returns the
// claims. It applies no policy.
func (v *Verifier) Verify(ctx context.Context, ev *attest.Evidence, opts *attest.VerifyOptions) (*attest.Claims, error) {
	if ev == nil {
		return nil, attest.Errorf(attest.CheckMalformed, "no evidence")
	}
	if ev.TEE != attest.SEVSNP {
		return nil, attest.Errorf(attest.CheckMalformed, "%s evidence given to the SEV-SNP verifier", ev.TEE)
	}
	r, err := ParseReport(ev.Report)
	if err != nil {
		return nil, err
	}
	t := opts.Time(nil)
	key, err := v.endorsementKey(ctx, r, ev.Certs, t)
	if err != nil {
		return nil, err
	}
	if outside(t, key.notBefore, key.notAfter) {
		return nil, attest.Errorf(attest.CheckExpired, "%v certificate chain is valid from %s to %s, not at %s", key.signer,
			key.notBefore.UTC().Format(time.RFC3339), key.notAfter.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	}
	if !verifySignature(key.pub, r.Raw) {
		return nil, attest.Errorf(attest.CheckSignature, "SEV-SNP report signature does not verify with the %v key", key.signer)
	}
	if err := checkBinding(r, key); err != nil {
		return nil, err
	}
	return claims(r, key), nil
}

// endorsementKey returns the verified key that signed r: the first
// certificate in certs that is cached or is a certificate of r's kind of
// signing key; failing that, one from the cache directory or AMD's KDS.
func (v *Verifier) endorsementKey(ctx context.Context, r *Report, certs [][]byte, now time.Time) (*endorsementKey, error) {
	for _, der := range certs {
		h := sha256.Sum256(der)
		if k := v.keys.get(h); k != nil && k.signer == r.Signer {
			return k, nil
		}
		if isSignerCert(der, r.Signer) {
			return v.verifyChain(ctx, r, der, h, now)
		}
	}
	der, err := v.lookupVCEK(ctx, r)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(der)
	if k := v.keys.get(h); k != nil && k.signer == r.Signer {
		return k, nil
	}
	return v.verifyChain(ctx, r, der, h, now)
}

// verifyChain checks the certificate der of r's signing key up to the
// trusted roots with go-sev-guest (which also checks r's signature with it)
// and caches the key on success.
func (v *Verifier) verifyChain(ctx context.Context, r *Report, der []byte, h [sha256.Size]byte, now time.Time) (*endorsementKey, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, attest.Errorf(attest.CheckCertificate, "parsing %v certificate: %w", r.Signer, err)
	}
	exts, err := kds.CertificateExtensions(cert, r.Signer)
	if err != nil {
		return nil, attest.Errorf(attest.CheckCertificate, "%v certificate extensions: %w", r.Signer, err)
	}
	productLine := ""
	if fms := r.Proto.GetCpuid1EaxFms(); fms != 0 {
		productLine = kds.ProductLineFromFms(fms)
	} else {
		// Version 2 reports do not name their product: the certificate does.
		product, err := kds.ParseProductName(exts.ProductName, r.Signer)
		if err != nil {
			return nil, attest.Errorf(attest.CheckCertificate, "%v certificate product name: %w", r.Signer, err)
		}
		productLine = kds.ProductLine(product)
	}
	roots, err := v.rootsFor(productLine)
	if err != nil {
		return nil, err
	}
	if outside(now, cert.NotBefore, cert.NotAfter) {
		return nil, attest.Errorf(attest.CheckExpired, "%v certificate is valid from %s to %s, not at %s", r.Signer,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !slices.ContainsFunc(roots, func(root *trust.AMDRootCerts) bool {
		ica, ark := intermediate(root, r.Signer), root.ProductCerts.Ark
		return ica != nil && ark != nil && !outside(now, ica.NotBefore, ica.NotAfter) && !outside(now, ark.NotBefore, ark.NotAfter)
	}) {
		return nil, attest.Errorf(attest.CheckExpired, "no trusted %s root certificate chain is valid at %s", productLine, now.UTC().Format(time.RFC3339))
	}

	chain := &spb.CertificateChain{}
	if r.Signer == abi.VlekReportSigner {
		chain.VlekCert = der
	} else {
		chain.VcekCert = der
	}
	err = verify.SnpAttestationContext(ctx, &spb.Attestation{Report: r.Proto, CertificateChain: chain}, &verify.Options{
		DisableCertFetching: true,
		Now:                 now,
		TrustedRoots:        map[string][]*trust.AMDRootCerts{productLine: roots},
	})
	if err != nil {
		// go-sev-guest checks the chain first and the report signature
		// last, reporting the latter with this prefix (v0.15.0).
		if strings.Contains(err.Error(), "report signature verification error") {
			return nil, attest.Errorf(attest.CheckSignature, "SEV-SNP report: %w", err)
		}
		return nil, attest.Errorf(attest.CheckCertificate, "%v certificate chain: %w", r.Signer, err)
	}

	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		// go-sev-guest already requires this; kept so the cache can
		// never hold anything else.
		return nil, attest.Errorf(attest.CheckCertificate, "%v certificate key is not ECDSA P-384", r.Signer)
	}
	k := &endorsementKey{
		pub:         pub,
		signer:      r.Signer,
		productLine: productLine,
		notBefore:   cert.NotBefore,
		notAfter:    cert.NotAfter,
		tcb:         uint64(exts.TCBVersion),
	}
	if r.Signer == abi.VcekReportSigner {
		k.hwid = bytes.Clone(exts.HWID)
	}
	// Narrow the validity to the root chain that issued the certificate.
	for _, root := range roots {
		ica, ark := intermediate(root, r.Signer), root.ProductCerts.Ark
		if ica == nil || ark == nil || cert.CheckSignatureFrom(ica) != nil {
			continue
		}
		k.notBefore = latest(k.notBefore, ica.NotBefore, ark.NotBefore)
		k.notAfter = earliest(k.notAfter, ica.NotAfter, ark.NotAfter)
		break
	}
	v.keys.put(h, k)
	return k, nil
}

// rootsFor returns the trusted roots for a product line.
func (v *Verifier) rootsFor(productLine string) ([]*trust.AMDRootCerts, error) {
	if v.roots != nil {
		roots := v.roots[productLine]
		if len(roots) == 0 {
			return nil, attest.Errorf(attest.CheckCertificate, "no trusted roots configured for AMD product line %q", productLine)
		}
		return roots, nil
	}
	root, err := trust.GetDefaultRootCerts(productLine)
	if err != nil {
		return nil, attest.Errorf(attest.CheckCertificate, "AMD product line %q: %w", productLine, err)
	}
	return []*trust.AMDRootCerts{root}, nil
}

func intermediate(root *trust.AMDRootCerts, signer abi.ReportSigner) *x509.Certificate {
	if root == nil || root.ProductCerts == nil {
		return nil
	}
	if signer == abi.VlekReportSigner {
		return root.ProductCerts.Asvk
	}
	return root.ProductCerts.Ask
}

// checkBinding checks what ties a verified key to this signed report: the
// key belongs to the product line the report names, it
// was issued for the TCB the report claims (AMD derives a VCEK from the
// chip's secret and the TCB, so older firmware cannot sign with a newer
// TCB's key, but it can write any REPORTED_TCB: only this comparison makes
// the reported TCB trustworthy), and a VCEK was issued for this CHIP_ID
// (unless the host masked it to zeros).
func checkBinding(r *Report, k *endorsementKey) error {
	if fms := r.Proto.GetCpuid1EaxFms(); fms != 0 {
		if pl := kds.ProductLineFromFms(fms); pl != k.productLine {
			return attest.Errorf(attest.CheckCertificate, "report is from an AMD %s but its %v was certified for %s", pl, k.signer, k.productLine)
		}
	}
	if got := r.Proto.GetReportedTcb(); got != k.tcb {
		return attest.Errorf(attest.CheckCertificate, "report claims reported TCB %#016x but its %v was issued for TCB %#016x", got, k.signer, k.tcb)
	}
	if k.signer == abi.VcekReportSigner {
		chip := r.Proto.GetChipId()
		if !allZero(chip) && !bytes.Equal(chip, k.hwid) {
			return attest.Errorf(attest.CheckCertificate, "report CHIP_ID %x is not the VCEK's hardware ID %x", chip, k.hwid)
		}
	}
	return nil
}

// verifySignature checks an ATTESTATION_REPORT's signature with a verified
// VCEK or VLEK public key.
//
// This is done here with crypto/ecdsa rather than through go-sev-guest's
// verify.SnpReportSignature, which parses the report again, re-encodes the
// signature as DER and goes through x509.Certificate.CheckSignature: with the
// chain already cached, the report signature is the only public-key operation
// left, and this keeps a cached verification at one P-384 verify (see
// docs/BENCHMARKS.md). The SEV-SNP ABI (ATTESTATION_REPORT, and the
// ECDSA-P384-SHA384 signature format) defines the signature as ECDSA P-384
// over SHA-384 of bytes 0x0 to 0x29F, with R at 0x2A0 and S at 0x2E8, each
// 72 bytes little-endian (zero above the 48 bytes a P-384 scalar needs, which
// ParseReport's must-be-zero checks do not cover; ecdsa.Verify rejects R or S
// that are not below the group order).
func verifySignature(pub *ecdsa.PublicKey, raw []byte) bool {
	if len(raw) != ReportSize {
		return false
	}
	digest := sha512.Sum384(raw[:signedSize])
	rr := new(big.Int).SetBytes(reverse(raw[0x2A0 : 0x2A0+72]))
	ss := new(big.Int).SetBytes(reverse(raw[0x2E8 : 0x2E8+72]))
	return ecdsa.Verify(pub, digest[:], rr, ss)
}

// reverse returns a reversed copy of b.
func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i, x := range b {
		out[len(b)-1-i] = x
	}
	return out
}

func outside(t, notBefore, notAfter time.Time) bool {
	return t.Before(notBefore) || t.After(notAfter)
}

func latest(ts ...time.Time) time.Time {
	out := ts[0]
	for _, t := range ts[1:] {
		if t.After(out) {
			out = t
		}
	}
	return out
}

func earliest(ts ...time.Time) time.Time {
	out := ts[0]
	for _, t := range ts[1:] {
		if t.Before(out) {
			out = t
		}
	}
	return out
}
