// Package credential receives layer-2 credentials: a client that verified the
// gateway's attestation seals a user's credentials with HPKE to the
// gateway's credential key (whose public half the RA-TLS key signs), and
// this package opens them and keeps them in memory only, bound to one
// principal id (the token chain's, captoken.Verified.ChainID: a parent token
// and its attenuations never share credentials) and one MCP session, until
// the session ends or the token expires.
package credential

import (
	"crypto"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/gateway/redact"
	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/internal/wire"
)

// KEMName is the suite name published with the key.
const KEMName = gatewayapi.CredentialKEM

// Domain separation strings (gatewayapi, docs/gateway.md).
const (
	// KeySignatureContext prefixes the public key in the RA-TLS key's
	// signature over it.
	KeySignatureContext = gatewayapi.CredentialKeyContext
	// InfoContext prefixes the principal id (the token's chain id) in the
	// HPKE info, binding a sealed body to the exact token it was sealed
	// for: replaying it with another token, an attenuation of it included,
	// fails to open.
	InfoContext = gatewayapi.CredentialInfoContext
)

// Limits on untrusted bodies.
const (
	MaxBodySize    = gatewayapi.MaxCredentialsBody
	MaxCredentials = 32
	MaxNameLen     = 128
	MaxValueLen    = 8 << 10
)

// Key is the gateway's HPKE credential key. It lives in memory only: a
// restart makes a new one, and clients fetch it again.
type Key struct {
	priv *ecdh.PrivateKey
	hk   hpke.PrivateKey
}

// NewKey generates a fresh X25519 key.
func NewKey() (*Key, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	hk, err := hpke.NewDHKEMPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	return &Key{priv: priv, hk: hk}, nil
}

// PublicKey returns the raw X25519 public key.
func (k *Key) PublicKey() []byte { return k.priv.PublicKey().Bytes() }

// Published is the body of GET /.well-known/chatmcp/credential-key.
type Published = gatewayapi.CredentialKey

// Publish signs the public key with signer (the RA-TLS certificate's ECDSA
// key): ECDSA over SHA-256 of KeySignatureContext || public key, ASN.1 DER.
func (k *Key) Publish(signer crypto.Signer) (*Published, error) {
	pub := k.PublicKey()
	sum := sha256.Sum256(append([]byte(KeySignatureContext), pub...))
	sig, err := signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing credential key: %w", err)
	}
	return &Published{KEM: KEMName, PublicKey: pub, Signature: sig}, nil
}

// Sealed is the body of POST /v1/credentials.
type Sealed = gatewayapi.SealedCredentials

// ErrOpen is returned when a sealed body does not open: wrong key, wrong
// principal id, or tampering.
var ErrOpen = errors.New("sealed credentials do not open")

// Info returns the HPKE info for the principal id principal.
func Info(principal string) []byte { return append([]byte(InfoContext), principal...) }

// Open decodes and opens a sealed body for the principal id principal and
// returns the credentials it carries.
func (k *Key) Open(body []byte, principal string) (map[string][]byte, error) {
	var s Sealed
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("credentials body larger than %d bytes", MaxBodySize)
	}
	if err := wire.Decode(body, &s); err != nil {
		return nil, fmt.Errorf("credentials body: %w", err)
	}
	r, err := hpke.NewRecipient(s.Enc, k.hk, hpke.HKDFSHA256(), hpke.AES256GCM(), Info(principal))
	if err != nil {
		return nil, ErrOpen
	}
	pt, err := r.Open(nil, s.Ciphertext)
	if err != nil {
		return nil, ErrOpen
	}
	return ParsePlaintext(pt)
}

// ParsePlaintext decodes the sealed JSON object {"NAME": "VALUE", ...}.
func ParsePlaintext(pt []byte) (map[string][]byte, error) {
	var m map[string]string
	if err := wire.Decode(pt, &m); err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	if len(m) == 0 || len(m) > MaxCredentials {
		return nil, fmt.Errorf("credentials: between 1 and %d names required", MaxCredentials)
	}
	out := make(map[string][]byte, len(m))
	for name, v := range m {
		if name == "" || len(name) > MaxNameLen {
			return nil, fmt.Errorf("credentials: name of %d bytes", len(name))
		}
		if len(v) < redact.MinLen || len(v) > MaxValueLen {
			return nil, fmt.Errorf("credentials: %s: value of %d bytes, want %d to %d (shorter values cannot be redacted safely)", name, len(v), redact.MinLen, MaxValueLen)
		}
		out[name] = []byte(v)
	}
	return out, nil
}

// Seal is the client side of Open, for tests and the CLI: it seals creds to
// the public key pub for the principal id principal.
func Seal(pub []byte, principal string, plaintext []byte) (*Sealed, error) {
	pk, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	hpk, err := hpke.NewDHKEMPublicKey(pk)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	enc, s, err := hpke.NewSender(hpk, hpke.HKDFSHA256(), hpke.AES256GCM(), Info(principal))
	if err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	ct, err := s.Seal(nil, plaintext)
	if err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	return &Sealed{Enc: enc, Ciphertext: ct}, nil
}

// binding is what credentials are bound to: a principal id (token chain)
// and a session.
type binding struct{ principal, session string }

type entry struct {
	creds   map[string][]byte
	expires time.Time
}

// Store keeps opened credentials in memory, bound to (principal id,
// session).
// It is safe for concurrent use.
type Store struct {
	now func() time.Time

	mu sync.Mutex
	m  map[binding]*entry
}

// NewStore returns an empty Store. now is the clock; if nil, time.Now.
func NewStore(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, m: map[binding]*entry{}}
}

// Put merges creds into the binding's set, expiring at expires (the token's
// expiry).
func (s *Store) Put(principal, session string, creds map[string][]byte, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := binding{principal, session}
	e := s.m[b]
	if e == nil {
		e = &entry{creds: map[string][]byte{}}
		s.m[b] = e
	}
	for k, v := range creds {
		e.creds[k] = v
	}
	e.expires = expires
}

// Get returns a copy of the credentials bound to (principal, session), or
// nil when there are none or they expired (expired ones are dropped).
func (s *Store) Get(principal, session string) map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := binding{principal, session}
	e := s.m[b]
	if e == nil {
		return nil
	}
	if !s.now().Before(e.expires) {
		wipe(e)
		delete(s.m, b)
		return nil
	}
	out := make(map[string][]byte, len(e.creds))
	for k, v := range e.creds {
		out[k] = v
	}
	return out
}

// DropSession forgets every binding of session.
func (s *Store) DropSession(session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for b, e := range s.m {
		if b.session == session {
			wipe(e)
			delete(s.m, b)
		}
	}
}

// Sweep drops expired bindings; call it periodically.
func (s *Store) Sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for b, e := range s.m {
		if !now.Before(e.expires) {
			wipe(e)
			delete(s.m, b)
		}
	}
}

// wipe overwrites credential bytes; best effort, since copies handed to
// upstream processes and strings are beyond its reach.
func wipe(e *entry) {
	for _, v := range e.creds {
		clear(v)
	}
}
