package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/chatmcp/chatmcp/internal/wire"
	"golang.org/x/crypto/cryptobyte"
)

// Limits on envelopes. An envelope for MaxRecipients devices and
// MaxPlaintext bytes stays under MaxEnvelope once JSON encoded.
const (
	MaxPlaintext  = 64 << 10
	MaxRecipients = 1024
	MaxEnvelope   = 512 << 10
)

// Version is the envelope format version.
const Version = 1

// ErrNotRecipient is returned by Open when the envelope wraps no key for
// the device: it was sent before the device joined, after it was removed or
// revoked, or to another conversation.
var ErrNotRecipient = errors.New("envelope: no key wrapped for this device")

// WrappedKey is the content key sealed with HPKE to one device.
type WrappedKey struct {
	Device string `json:"device"`
	Key    []byte `json:"key"` // HPKE encapsulated key || sealed content key
}

// Envelope is one end-to-end encrypted message. The content is sealed once
// with AES-256-GCM under a fresh key; that key is wrapped with HPKE
// (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) to every device of
// every current member, the sender's other devices included; the sender's
// device key signs everything.
type Envelope struct {
	V            int          `json:"v"`
	ID           string       `json:"id"`
	Conversation string       `json:"conversation"`
	Epoch        uint64       `json:"epoch"`
	MembersHash  []byte       `json:"members_hash"`
	SentAt       int64        `json:"sent_at"` // Unix milliseconds
	Sender       DeviceCert   `json:"sender"`
	Keys         []WrappedKey `json:"keys"`
	Ciphertext   []byte       `json:"ciphertext"`
	Sig          []byte       `json:"sig"`
}

// suite is the HPKE cipher suite for key wrapping.
var (
	kem  = hpke.DHKEM(ecdh.X25519())
	kdf  = hpke.HKDFSHA256()
	aead = hpke.AES256GCM()
)

// header is what the content AEAD authenticates and the key wrap binds
// to: everything about the message except keys, ciphertext and signature.
func (e *Envelope) header() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(tagEnvelope))
	b.AddUint16(uint16(e.V))
	addString(&b, e.ID)
	addString(&b, e.Conversation)
	b.AddUint64(e.Epoch)
	addBytes(&b, e.MembersHash)
	b.AddUint64(uint64(e.SentAt))
	addString(&b, e.Sender.Wallet.String())
	addString(&b, e.Sender.Device)
	return b.BytesOrPanic()
}

func (e *Envelope) signed() []byte {
	var b cryptobyte.Builder
	b.AddBytes(e.header())
	b.AddUint32(uint32(len(e.Keys)))
	for _, k := range e.Keys {
		addString(&b, k.Device)
		addBytes(&b, k.Key)
	}
	addBytes(&b, e.Ciphertext)
	return b.BytesOrPanic()
}

// Hash identifies the envelope's signed content (stamps commit to it).
func (e *Envelope) Hash() [32]byte { return sha256.Sum256(e.signed()) }

func wrapInfo(header []byte, device string) []byte {
	h := sha256.Sum256(header)
	return append(append([]byte(tagKeyWrap+"\x00"), h[:]...), device...)
}

// Seal encrypts plaintext for conv's members. recipients are the device
// certificates of the members (the caller fetched them from the relay);
// each is verified and must belong to a member. The sender's own device is
// added if missing.
func Seal(rand io.Reader, sender *Device, conv *Conversation, recipients []DeviceCert, plaintext []byte, now time.Time) (*Envelope, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("sealing: message is %d bytes, limit %d", len(plaintext), MaxPlaintext)
	}
	if !conv.IsMember(sender.Cert.Wallet) {
		return nil, errors.New("sealing: sender is not a member of the conversation")
	}
	id, err := NewID(rand)
	if err != nil {
		return nil, err
	}
	e := &Envelope{
		V: Version, ID: id, Conversation: conv.ID, Epoch: conv.Epoch,
		MembersHash: conv.MembersHash(), SentAt: now.UnixMilli(), Sender: sender.Cert.Bare(),
	}
	var ck [32]byte
	if _, err := io.ReadFull(rand, ck[:]); err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	header := e.header()
	seen := map[string]bool{}
	all := append([]DeviceCert{sender.Cert}, recipients...)
	for i := range all {
		c := &all[i]
		if seen[c.Device] {
			continue
		}
		if err := c.Verify(); err != nil {
			return nil, fmt.Errorf("sealing: recipient %s: %w", c.Device, err)
		}
		if !conv.IsMember(c.Wallet) {
			return nil, fmt.Errorf("sealing: device %s belongs to %s, not a member", c.Device, c.Wallet)
		}
		seen[c.Device] = true
		pk, err := kem.NewPublicKey(c.HPKE)
		if err != nil {
			return nil, fmt.Errorf("sealing: recipient %s: %w", c.Device, err)
		}
		wrapped, err := hpke.Seal(pk, kdf, aead, wrapInfo(header, c.Device), ck[:])
		if err != nil {
			return nil, fmt.Errorf("sealing: wrapping key: %w", err)
		}
		e.Keys = append(e.Keys, WrappedKey{Device: c.Device, Key: wrapped})
	}
	if len(e.Keys) > MaxRecipients {
		return nil, fmt.Errorf("sealing: %d recipient devices, limit %d", len(e.Keys), MaxRecipients)
	}
	g, err := contentAEAD(ck[:])
	if err != nil {
		return nil, err
	}
	// The content key is fresh for every message and used once, so a fixed
	// all-zero nonce is safe (as in age's payload and HPKE's first message).
	e.Ciphertext = g.Seal(nil, make([]byte, g.NonceSize()), plaintext, header)
	e.Sig = ed25519.Sign(sender.sign, e.signed())
	return e, nil
}

func contentAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("content cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// Validate checks the envelope's structure and limits without any
// cryptography.
func (e *Envelope) Validate() error {
	if e.V != Version {
		return fmt.Errorf("envelope: version %d, want %d", e.V, Version)
	}
	if !ValidID(e.ID) || !ValidID(e.Conversation) {
		return errors.New("envelope: message or conversation ID is not 32 lowercase hex characters")
	}
	if e.Epoch == 0 || e.SentAt <= 0 || len(e.MembersHash) != sha256.Size {
		return errors.New("envelope: missing epoch, time or members hash")
	}
	if len(e.Keys) == 0 || len(e.Keys) > MaxRecipients {
		return fmt.Errorf("envelope: %d wrapped keys, want 1 to %d", len(e.Keys), MaxRecipients)
	}
	seen := make(map[string]bool, len(e.Keys))
	for _, k := range e.Keys {
		if !ValidID(k.Device) || seen[k.Device] {
			return errors.New("envelope: wrapped key for an invalid or repeated device")
		}
		seen[k.Device] = true
		if len(k.Key) != 32+32+16 {
			return errors.New("envelope: wrapped key has the wrong length")
		}
	}
	if len(e.Ciphertext) < 16 || len(e.Ciphertext) > MaxPlaintext+16 {
		return errors.New("envelope: ciphertext length out of range")
	}
	return nil
}

// Verify checks structure, the sender's device certificate (signed by the
// sender's wallet) and the envelope signature (by the sender's device). It
// is what the relay, which cannot decrypt, checks.
func (e *Envelope) Verify() error {
	if err := e.Validate(); err != nil {
		return err
	}
	if err := e.Sender.Verify(); err != nil {
		return fmt.Errorf("envelope: sender: %w", err)
	}
	if !ed25519.Verify(e.Sender.Signing, e.signed(), e.Sig) {
		return errors.New("envelope: signature does not verify (tampered or forged)")
	}
	return nil
}

// Open verifies e and decrypts it for device d. conv is the receiver's
// verified membership at e.Epoch; the sender must be a member.
func Open(e *Envelope, d *Device, conv *Conversation) ([]byte, error) {
	if err := e.Verify(); err != nil {
		return nil, err
	}
	if e.Conversation != conv.ID || e.Epoch != conv.Epoch {
		return nil, errors.New("envelope: conversation or epoch does not match")
	}
	if !bytes.Equal(e.MembersHash, conv.MembersHash()) {
		return nil, errors.New("envelope: members hash does not match the conversation's members")
	}
	if !conv.IsMember(e.Sender.Wallet) {
		return nil, fmt.Errorf("envelope: sender %s is not a member", e.Sender.Wallet)
	}
	var wrapped []byte
	for _, k := range e.Keys {
		if k.Device == d.Cert.Device {
			wrapped = k.Key
		}
	}
	if wrapped == nil {
		return nil, ErrNotRecipient
	}
	priv, err := d.hpkePrivate()
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	header := e.header()
	ck, err := hpke.Open(priv, kdf, aead, wrapInfo(header, d.Cert.Device), wrapped)
	if err != nil || len(ck) != 32 {
		return nil, errors.New("envelope: wrapped key does not open")
	}
	g, err := contentAEAD(ck)
	if err != nil {
		return nil, err
	}
	pt, err := g.Open(nil, make([]byte, g.NonceSize()), e.Ciphertext, header)
	if err != nil {
		return nil, errors.New("envelope: content does not decrypt")
	}
	return pt, nil
}

// Parse decodes an envelope strictly and checks its structure (not its
// signatures: call Verify or Open).
func Parse(data []byte) (*Envelope, error) {
	if len(data) > MaxEnvelope {
		return nil, fmt.Errorf("envelope: %d bytes, limit %d", len(data), MaxEnvelope)
	}
	var e Envelope
	if err := wire.Decode(data, &e); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}
