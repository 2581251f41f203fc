package ratls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/attest"
)

// IssuerOptions configure an Issuer.
type IssuerOptions struct {
	// Validity is each certificate's lifetime. If zero, 24 hours.
	Validity time.Duration
	// DNSNames are put in the certificate's subject alternative names. If
	// empty, none: RA-TLS clients check evidence, not names.
	DNSNames []string
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Issuer holds the server's current RA-TLS certificate and replaces it, with
// a fresh key and fresh evidence, once two thirds of its lifetime have
// passed. It is safe for concurrent use.
type Issuer struct {
	attester attest.Attester
	validity time.Duration
	dnsNames []string
	now      func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	spki    []byte
	renewAt time.Time
	expires time.Time
}

// NewIssuer returns an Issuer producing evidence with a. No certificate is
// made until the first call of Certificate or GetCertificate.
func NewIssuer(a attest.Attester, opts *IssuerOptions) *Issuer {
	if opts == nil {
		opts = &IssuerOptions{}
	}
	i := &Issuer{attester: a, validity: opts.Validity, dnsNames: opts.DNSNames, now: opts.Now}
	if i.validity <= 0 {
		i.validity = 24 * time.Hour
	}
	if i.now == nil {
		i.now = time.Now
	}
	return i
}

// GetCertificate is for tls.Config.GetCertificate.
func (i *Issuer) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	ctx := context.Background()
	if hello != nil && hello.Context() != nil {
		ctx = hello.Context()
	}
	return i.Certificate(ctx)
}

// ServerConfig returns a TLS configuration serving the Issuer's
// certificates (TLS 1.3 only).
func (i *Issuer) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: i.GetCertificate}
}

// Certificate returns the current certificate, issuing a new one when none
// exists or the current one is past its renewal time. When renewal fails
// while the current certificate is still valid, the current one is served
// and the next call retries; an expired certificate is never served.
// Handshakes wait while a renewal attests (once per rotation), so that no
// two renewals race and every client sees one current certificate.
func (i *Issuer) Certificate(ctx context.Context) (*tls.Certificate, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := i.now()
	if i.cert != nil && now.Before(i.renewAt) {
		return i.cert, nil
	}
	cert, spki, err := i.issue(ctx, now)
	if err != nil {
		if i.cert != nil && now.Before(i.expires) {
			return i.cert, nil
		}
		return nil, err
	}
	i.cert, i.spki = cert, spki
	i.expires = now.Add(i.validity)
	i.renewAt = now.Add(i.validity * 2 / 3)
	return cert, nil
}

// SPKI returns the DER SubjectPublicKeyInfo of the current certificate's
// key, issuing a certificate first if needed. It suits AttestationHandler.
func (i *Issuer) SPKI(ctx context.Context) ([]byte, error) {
	if _, err := i.Certificate(ctx); err != nil {
		return nil, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]byte(nil), i.spki...), nil
}

// issue makes a fresh ECDSA P-256 key, obtains evidence binding its
// SubjectPublicKeyInfo, and self-signs a certificate carrying it. P-256 is
// what every TLS 1.3 stack supports; the key never leaves process memory.
func (i *Issuer) issue(ctx context.Context, now time.Time) (*tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ratls: generating key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("ratls: encoding public key: %w", err)
	}
	rd, err := ReportData(spki)
	if err != nil {
		return nil, nil, err
	}
	ev, err := i.attester.Attest(ctx, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("ratls: attesting certificate key: %w", err)
	}
	if ev == nil {
		return nil, nil, errors.New("ratls: attester returned no evidence")
	}
	env, err := json.Marshal(ev)
	if err != nil {
		return nil, nil, fmt.Errorf("ratls: encoding evidence: %w", err)
	}
	ext, err := marshalExtension(env)
	if err != nil {
		return nil, nil, fmt.Errorf("ratls: encoding extension: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("ratls: serial number: %w", err)
	}
	skid := sha256.Sum256(spki)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "chatmcp RA-TLS " + string(ev.TEE)},
		// A minute of back-dating tolerates clients whose clocks run slow.
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(i.validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          skid[:20],
		DNSNames:              i.dnsNames,
		ExtraExtensions:       []pkix.Extension{{Id: oidEvidence, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("ratls: creating certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("ratls: parsing own certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, spki, nil
}
