// Package sevsnp verifies AMD SEV-SNP attestation reports: it parses the raw
// report, checks the VCEK (or VLEK) certificate chain up to AMD's root and
// the report's signature, and returns normalized claims; it applies no
// policy and never touches the SEV-SNP guest device (see package
// sevsnp/device for that).
package sevsnp

import (
	"github.com/chatmcp/chatmcp/attest"
	"github.com/google/go-sev-guest/verify/trust"
)

// Options configure a Verifier. A nil *Options is the same as the zero
// value: offline, no cache directory, AMD's embedded roots.
type Options struct {
	// Getter fetches VCEK certificates from AMD's Key Distribution Service
	// when the evidence carries none and the cache directory has none. If
	// nil, the verifier is offline and never opens a network connection.
	Getter trust.HTTPSGetter
	// CacheDir is a directory of DER VCEK certificates, named as
	// VCEKFileName returns; certificates fetched through Getter are written
	// there. Files in it are untrusted: they are verified like certificates
	// carried in the evidence. If "", no directory is used.
	CacheDir string
	// Roots are the trusted ARK and ASK (and ASVK) certificates by product
	// line ("Milan", "Genoa", "Turin"). If nil, the AMD roots embedded in
	// github.com/google/go-sev-guest are used. Tests inject generated roots
	// here.
	Roots map[string][]*trust.AMDRootCerts
	// MaxCachedKeys bounds the in-memory cache of verified VCEK and VLEK
	// keys. If zero, 256.
	MaxCachedKeys int
}

// Verifier verifies SEV-SNP evidence. It implements attest.Verifier and is
// safe for concurrent use.
//
// It remembers every VCEK or VLEK whose chain it verified, keyed by the
// SHA-256 of the certificate's DER bytes, so that later reports signed by
// the same key cost one P-384 signature verification instead of a chain
// walk; an entry is used only while every certificate of its chain is
// within its validity period at the verification time.
type Verifier struct {
	getter   trust.HTTPSGetter
	cacheDir string
	roots    map[string][]*trust.AMDRootCerts
	keys     *keyCache
}

var _ attest.Verifier = (*Verifier)(nil)

// NewVerifier returns a Verifier configured by opts, which may be nil.
func NewVerifier(opts *Options) *Verifier {
	if opts == nil {
		opts = &Options{}
	}
	max := opts.MaxCachedKeys
	if max <= 0 {
		max = 256
	}
	return &Verifier{
		getter:   opts.Getter,
		cacheDir: opts.CacheDir,
		roots:    opts.Roots,
		keys:     newKeyCache(max),
	}
}

// TEE returns attest.SEVSNP.
func (v *Verifier) TEE() attest.TEE { return attest.SEVSNP }
