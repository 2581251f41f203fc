// Package wallet holds Solana wallet identities for ChatMCP: ed25519
// keypairs in solana-keygen's JSON file format, base58 addresses, and
// Sign-In With Solana messages. It talks to no server and no chain.
package wallet

import (
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/mr-tron/base58"

	"github.com/chatmcp/chatmcp/internal/keyfile"
)

// Address is a Solana account address: an ed25519 public key, shown in
// base58.
type Address struct {
	key [ed25519.PublicKeySize]byte
}

// ParseAddress decodes a base58 Solana address. It rejects anything that
// does not decode to exactly 32 bytes or that is not in canonical base58
// form (so one key has one spelling).
func ParseAddress(s string) (Address, error) {
	if s == "" || len(s) > 44 {
		return Address{}, fmt.Errorf("invalid wallet address %q: want 32-44 base58 characters", truncate(s))
	}
	b, err := base58.Decode(s)
	if err != nil {
		return Address{}, fmt.Errorf("invalid wallet address %q: not base58", truncate(s))
	}
	if len(b) != ed25519.PublicKeySize {
		return Address{}, fmt.Errorf("invalid wallet address %q: decodes to %d bytes, want 32", truncate(s), len(b))
	}
	var a Address
	copy(a.key[:], b)
	if a.String() != s {
		return Address{}, fmt.Errorf("invalid wallet address %q: not canonical base58", truncate(s))
	}
	return a, nil
}

// AddressFromPublicKey returns the address of an ed25519 public key.
func AddressFromPublicKey(pub ed25519.PublicKey) (Address, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Address{}, fmt.Errorf("public key is %d bytes, want 32", len(pub))
	}
	var a Address
	copy(a.key[:], pub)
	return a, nil
}

// String returns the base58 form.
func (a Address) String() string { return base58.Encode(a.key[:]) }

// IsZero reports whether a is the zero Address (not a parsed one).
func (a Address) IsZero() bool { return a == Address{} }

// Equal compares two addresses in constant time.
func (a Address) Equal(b Address) bool { return subtle.ConstantTimeCompare(a.key[:], b.key[:]) == 1 }

// PublicKey returns the ed25519 public key.
func (a Address) PublicKey() ed25519.PublicKey { return append(ed25519.PublicKey(nil), a.key[:]...) }

// Verify reports whether sig is a valid ed25519 signature of msg by a.
func (a Address) Verify(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(a.key[:], msg, sig)
}

// MarshalText implements encoding.TextMarshaler (base58).
func (a Address) MarshalText() ([]byte, error) {
	if a.IsZero() {
		return nil, errors.New("marshaling zero wallet address")
	}
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseAddress.
func (a *Address) UnmarshalText(b []byte) error {
	p, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// Signer is a wallet that signs messages: a *Keypair, or a wallet held
// elsewhere (a browser wallet reached through chatmcp web) whose Sign
// returns nil for a message its owner did not sign.
type Signer interface {
	Address() Address
	Sign(msg []byte) []byte
}

// Keypair is a wallet's signing key.
type Keypair struct {
	priv ed25519.PrivateKey
}

// Generate makes a new keypair from rand (crypto/rand.Reader in
// production).
func Generate(rand io.Reader) (*Keypair, error) {
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generating wallet key: %w", err)
	}
	return &Keypair{priv: priv}, nil
}

// NewKeypair wraps an ed25519 private key.
func NewKeypair(priv ed25519.PrivateKey) (*Keypair, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("private key is %d bytes, want 64", len(priv))
	}
	return &Keypair{priv: append(ed25519.PrivateKey(nil), priv...)}, nil
}

// Address returns the keypair's address.
func (k *Keypair) Address() Address {
	var a Address
	copy(a.key[:], k.priv[32:])
	return a
}

// Sign signs msg with ed25519, as a Solana wallet's signMessage does.
func (k *Keypair) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// maxKeypairFile bounds a keypair file: 64 numbers of up to 3 digits,
// separators and white space.
const maxKeypairFile = 4096

// ParseKeypair decodes solana-keygen's format: a JSON array of 64 integers
// 0-255, the 32-byte seed followed by the 32-byte public key. The public
// half must be the one the seed derives.
func ParseKeypair(data []byte) (*Keypair, error) {
	if len(data) > maxKeypairFile {
		return nil, fmt.Errorf("parsing keypair: file larger than %d bytes", maxKeypairFile)
	}
	s := strings.TrimSpace(string(data))
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil, errors.New("parsing keypair: want a JSON array of 64 bytes")
	}
	inner := strings.TrimSpace(s[1 : len(s)-1])
	parts := strings.Split(inner, ",")
	if len(parts) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("parsing keypair: %d elements, want 64", len(parts))
	}
	raw := make([]byte, 0, ed25519.PrivateKeySize)
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" || len(p) > 3 || (len(p) > 1 && p[0] == '0') {
			return nil, fmt.Errorf("parsing keypair: element %d is not a byte", i)
		}
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return nil, fmt.Errorf("parsing keypair: element %d is not a byte", i)
		}
		raw = append(raw, byte(n))
	}
	priv := ed25519.NewKeyFromSeed(raw[:32])
	if subtle.ConstantTimeCompare(priv[32:], raw[32:]) != 1 {
		return nil, errors.New("parsing keypair: public key does not match the secret key")
	}
	return &Keypair{priv: priv}, nil
}

// MarshalKeypair encodes k in solana-keygen's format.
func (k *Keypair) MarshalKeypair() []byte {
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range k.priv {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(c)))
	}
	b.WriteByte(']')
	return []byte(b.String())
}

// LoadFile reads a solana-keygen keypair file.
func LoadFile(path string) (*Keypair, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading wallet: %w", err)
	}
	k, err := ParseKeypair(data)
	if err != nil {
		return nil, fmt.Errorf("wallet %s: %w", path, err)
	}
	return k, nil
}

// WriteFile writes k to a new file at path with mode 0600, atomically and
// synced (keyfile.Create). It refuses to overwrite an existing file.
func (k *Keypair) WriteFile(path string) error {
	if err := keyfile.Create(path, append(k.MarshalKeypair(), '\n')); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("writing wallet: %s already exists; refusing to overwrite it", path)
		}
		return fmt.Errorf("writing wallet: %w", err)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
