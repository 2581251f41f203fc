package ratls

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/chatmcp/chatmcp/attest"
)

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	// Now is the clock for certificate validity, evidence age and the
	// cache. If nil, time.Now.
	Now func() time.Time
	// CacheSize is how many verified certificates are remembered. If zero,
	// 64; if negative, nothing is cached.
	CacheSize int
	// Warn receives policy warnings (an empty measurement list). If nil,
	// they are dropped.
	Warn func(msg string)
}

// Verifier checks RA-TLS peer certificates against an attestation policy.
// It is safe for concurrent use.
type Verifier struct {
	checker *attest.Checker
	policy  *attest.Policy
	now     func() time.Time
	warn    func(string)
	cache   *cache
}

// NewVerifier returns a Verifier accepting peers whose evidence passes
// checker under policy. A nil policy rejects every peer.
func NewVerifier(checker *attest.Checker, policy *attest.Policy, opts *VerifierOptions) *Verifier {
	if opts == nil {
		opts = &VerifierOptions{}
	}
	v := &Verifier{checker: checker, policy: policy, now: opts.Now, warn: opts.Warn}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case opts.CacheSize == 0:
		v.cache = newCache(64)
	case opts.CacheSize > 0:
		v.cache = newCache(opts.CacheSize)
	}
	return v
}

// CacheStats reports the cache's hit and miss counts.
func (v *Verifier) CacheStats() CacheStats { return v.cache.stats() }

// VerifyCertificate checks one RA-TLS certificate: its validity window at
// the verifier's clock (CheckExpired), its self-signature (CheckSignature),
// its evidence under the policy, and that the evidence's report data binds
// the certificate's own public key (CheckReportData). A certificate verified
// before and not yet expired is accepted from the cache, so the returned
// claims may be shared with other callers and must not be modified. Every
// error is an *attest.Error.
func (v *Verifier) VerifyCertificate(ctx context.Context, cert *x509.Certificate) (*attest.Claims, error) {
	now := v.now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, attest.Errorf(attest.CheckExpired, "ratls: certificate valid %s to %s, not at %s",
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	key := cacheKey{spki: sha256.Sum256(cert.RawSubjectPublicKeyInfo), cert: sha256.Sum256(cert.Raw)}
	if claims, ok := v.cache.get(key, now); ok {
		return claims, nil
	}
	// The self-signature makes the extension and validity period
	// statements of the key holder; the handshake proves the peer holds it.
	// CheckSignature (not CheckSignatureFrom) because the certificate is a
	// leaf, not a CA: only the signature by its own key matters.
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, attest.Errorf(attest.CheckSignature, "ratls: certificate self-signature: %w", err)
	}
	ev, err := EvidenceFromCertificate(cert)
	if err != nil {
		return nil, err
	}
	rd, err := ReportData(cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "%w", err)
	}
	claims, err := v.checker.Check(ctx, ev, v.policy, &attest.CheckOptions{Now: now, ReportData: rd[:], Warn: v.warn})
	if err != nil {
		return nil, err
	}
	expires := cert.NotAfter
	if !claims.Time.IsZero() && v.policy.MaxAge > 0 {
		if d := claims.Time.Add(time.Duration(v.policy.MaxAge)); d.Before(expires) {
			expires = d
		}
	}
	v.cache.put(key, claims, expires)
	return claims, nil
}

// VerifyConnection is for tls.Config.VerifyConnection. Unlike
// VerifyPeerCertificate it also runs on resumed sessions, so a resumed
// connection is held to the policy at its own time.
func (v *Verifier) VerifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return attest.Errorf(attest.CheckMalformed, "ratls: peer sent no certificate")
	}
	_, err := v.VerifyCertificate(context.Background(), cs.PeerCertificates[0])
	return err
}

// VerifyPeerCertificate is for tls.Config.VerifyPeerCertificate, for callers
// that cannot use VerifyConnection. It does not run on resumed sessions;
// prefer VerifyConnection.
func (v *Verifier) VerifyPeerCertificate(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	if len(rawCerts) == 0 {
		return attest.Errorf(attest.CheckMalformed, "ratls: peer sent no certificate")
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return attest.Errorf(attest.CheckMalformed, "ratls: peer certificate: %w", err)
	}
	_, err = v.VerifyCertificate(context.Background(), cert)
	return err
}

// ClientConfig returns a TLS 1.3 client configuration that accepts a server
// only when v accepts its RA-TLS certificate.
//
// InsecureSkipVerify is set because an RA-TLS certificate is self-signed and
// chains to no Web PKI root, so Go's default chain and name verification
// would always fail. It does NOT turn verification off here:
// VerifyConnection replaces it, and it runs on every handshake, full or
// resumed, and fails the handshake unless the evidence in the certificate
// passes the policy and binds the certificate's key. Never copy this config
// without VerifyConnection.
func ClientConfig(v *Verifier) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by VerifyConnection below; see the doc comment
		VerifyConnection:   v.VerifyConnection,
	}
}
