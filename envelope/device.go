// Package envelope defines ChatMCP's signed messaging objects and their
// cryptography: wallet-certified device keys, conversation membership
// operations, consent updates, and end-to-end encrypted message envelopes
// (sealed once with AES-256-GCM, key wrapped with HPKE to every member
// device, signed by the sender's device key). It talks to no server; the
// relay uses it only to check signatures and structure.
//
// It is a root package, not part of the chat client, because it is the
// message format both ends own: the chat client seals and opens envelopes,
// the relay (untrusted, linking no client code) verifies their signatures
// and membership ops. Neither side's code lives here.
package envelope

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// CertDomain is the Sign-In With Solana domain of device certificates and
// revocations. It is not a host name, so a web site cannot get a wallet to
// sign one in place of its own sign-in.
const CertDomain = "chatmcp.device"

const (
	certStatement       = "Authorize this device key to send and receive ChatMCP messages for this wallet."
	revocationStatement = "Revoke this ChatMCP device key: it may no longer send or receive messages for this wallet."
	certChainID         = "solana:mainnet"
)

// DeviceCert binds a device's HPKE (X25519) and Ed25519 signing keys to a
// wallet: the wallet signs the certificate's Sign-In With Solana text
// (Message), so any wallet that can sign in can certify a device.
type DeviceCert struct {
	Wallet  wallet.Address `json:"wallet"`
	Device  string         `json:"device"`  // 32 lowercase hex characters
	HPKE    []byte         `json:"hpke"`    // X25519 public key
	Signing []byte         `json:"signing"` // Ed25519 public key
	Created int64          `json:"created"` // Unix milliseconds
	Sig     []byte         `json:"sig"`     // wallet's ed25519 signature of Message()
	// Evidence is the device's attestation evidence, published with it in
	// the relay's directory (see evidence.go); empty for a person's device.
	Evidence jsontext.Value `json:"evidence,omitzero"`
}

// Message returns the canonical text the wallet signs.
func (c *DeviceCert) Message() string {
	m := wallet.SignInMessage{
		Domain:    CertDomain,
		Address:   c.Wallet,
		Statement: certStatement,
		URI:       "chatmcp:device:" + c.Device,
		Version:   "1",
		ChainID:   certChainID,
		Nonce:     c.Device,
		IssuedAt:  time.UnixMilli(c.Created),
		Resources: []string{
			"chatmcp:hpke:x25519:" + base64.RawURLEncoding.EncodeToString(c.HPKE),
			"chatmcp:sign:ed25519:" + base64.RawURLEncoding.EncodeToString(c.Signing),
		},
	}
	return m.String()
}

// Verify checks the certificate's structure and its wallet signature.
func (c *DeviceCert) Verify() error {
	if c.Wallet.IsZero() {
		return errors.New("device certificate: no wallet")
	}
	if !ValidID(c.Device) {
		return errors.New("device certificate: device ID is not 32 lowercase hex characters")
	}
	if len(c.HPKE) != 32 {
		return errors.New("device certificate: HPKE key is not 32 bytes")
	}
	if _, err := ecdh.X25519().NewPublicKey(c.HPKE); err != nil {
		return fmt.Errorf("device certificate: HPKE key: %w", err)
	}
	if len(c.Signing) != ed25519.PublicKeySize {
		return errors.New("device certificate: signing key is not 32 bytes")
	}
	if c.Created <= 0 {
		return errors.New("device certificate: no creation time")
	}
	if !c.Wallet.Verify([]byte(c.Message()), c.Sig) {
		return errors.New("device certificate: wallet signature does not verify")
	}
	return c.checkEvidence()
}

// ValidID reports whether s is a ChatMCP identifier: 16 bytes as 32
// lowercase hex characters (device, conversation and message IDs).
func ValidID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// NewID returns a random identifier.
func NewID(rand io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("generating ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Device is one device's secret keys and its certificate.
type Device struct {
	Cert    DeviceCert
	hpkeKey *ecdh.PrivateKey
	sign    ed25519.PrivateKey
}

// NewDevice generates device keys and has w certify them.
func NewDevice(rand io.Reader, w wallet.Signer, now time.Time) (*Device, error) {
	d, err := NewUncertifiedDevice(rand, w.Address(), now)
	if err != nil {
		return nil, err
	}
	d.Cert.Sig = w.Sign([]byte(d.Cert.Message()))
	return d, nil
}

// NewUncertifiedDevice generates device keys for wallet a with an unsigned
// certificate: the wallet signs Cert.Message() and the caller sets Cert.Sig
// and checks Cert.Verify (a browser wallet signs asynchronously).
func NewUncertifiedDevice(rand io.Reader, a wallet.Address, now time.Time) (*Device, error) {
	id, err := NewID(rand)
	if err != nil {
		return nil, err
	}
	hk, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generating device HPKE key: %w", err)
	}
	spub, spriv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generating device signing key: %w", err)
	}
	return &Device{
		Cert: DeviceCert{
			Wallet:  a,
			Device:  id,
			HPKE:    hk.PublicKey().Bytes(),
			Signing: spub,
			Created: now.UnixMilli(),
		},
		hpkeKey: hk,
		sign:    spriv,
	}, nil
}

// deviceFile is a device's secret state on disk.
type deviceFile struct {
	Cert        DeviceCert `json:"cert"`
	HPKEPrivate []byte     `json:"hpke_private"`
	SigningSeed []byte     `json:"signing_seed"`
}

// MarshalSecret encodes the device's secret keys and certificate. The
// result must be stored with owner-only permissions.
func (d *Device) MarshalSecret() ([]byte, error) {
	return json.Marshal(deviceFile{Cert: d.Cert, HPKEPrivate: d.hpkeKey.Bytes(), SigningSeed: d.sign.Seed()})
}

// ParseDevice decodes MarshalSecret's output and checks that the keys match
// the certificate and the certificate verifies.
func ParseDevice(data []byte) (*Device, error) {
	var f deviceFile
	if err := wire.Decode(data, &f); err != nil {
		return nil, fmt.Errorf("parsing device: %w", err)
	}
	if err := f.Cert.Verify(); err != nil {
		return nil, fmt.Errorf("parsing device: %w", err)
	}
	hk, err := ecdh.X25519().NewPrivateKey(f.HPKEPrivate)
	if err != nil {
		return nil, fmt.Errorf("parsing device: %w", err)
	}
	if len(f.SigningSeed) != ed25519.SeedSize {
		return nil, errors.New("parsing device: signing seed is not 32 bytes")
	}
	sk := ed25519.NewKeyFromSeed(f.SigningSeed)
	if string(hk.PublicKey().Bytes()) != string(f.Cert.HPKE) || string(sk.Public().(ed25519.PublicKey)) != string(f.Cert.Signing) {
		return nil, errors.New("parsing device: keys do not match the certificate")
	}
	return &Device{Cert: f.Cert, hpkeKey: hk, sign: sk}, nil
}

func (d *Device) hpkePrivate() (hpke.PrivateKey, error) { return hpke.NewDHKEMPrivateKey(d.hpkeKey) }

// Revocation withdraws a device certificate. The wallet signs it.
type Revocation struct {
	Wallet  wallet.Address `json:"wallet"`
	Device  string         `json:"device"`
	Revoked int64          `json:"revoked"` // Unix milliseconds
	Sig     []byte         `json:"sig"`
}

// Message returns the canonical text the wallet signs.
func (r *Revocation) Message() string {
	m := wallet.SignInMessage{
		Domain:    CertDomain,
		Address:   r.Wallet,
		Statement: revocationStatement,
		URI:       "chatmcp:device:" + r.Device,
		Version:   "1",
		ChainID:   certChainID,
		Nonce:     r.Device,
		IssuedAt:  time.UnixMilli(r.Revoked),
	}
	return m.String()
}

// NewRevocation has w sign the revocation of device.
func NewRevocation(w wallet.Signer, device string, now time.Time) *Revocation {
	r := &Revocation{Wallet: w.Address(), Device: device, Revoked: now.UnixMilli()}
	r.Sig = w.Sign([]byte(r.Message()))
	return r
}

// Verify checks the revocation's structure and wallet signature.
func (r *Revocation) Verify() error {
	if r.Wallet.IsZero() || !ValidID(r.Device) || r.Revoked <= 0 {
		return errors.New("revocation: malformed")
	}
	if !r.Wallet.Verify([]byte(r.Message()), r.Sig) {
		return errors.New("revocation: wallet signature does not verify")
	}
	return nil
}
