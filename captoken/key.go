package captoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/chatmcp/chatmcp/internal/keyfile"
)

// KeySize is the size of a root key in bytes.
const KeySize = 32

// Key is a gateway's token root key: whoever holds it can mint any token for
// its audience. It is kept in an unexported array so it is never logged or
// compared by accident.
type Key struct {
	k [KeySize]byte
}

// NewKey returns a fresh random key.
func NewKey() (*Key, error) {
	var k Key
	if _, err := rand.Read(k.k[:]); err != nil {
		return nil, fmt.Errorf("captoken: generating key: %w", err)
	}
	return &k, nil
}

// KeyFromBytes returns the key with the given 32 bytes.
func KeyFromBytes(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("captoken: key is %d bytes, want %d", len(b), KeySize)
	}
	var k Key
	copy(k.k[:], b)
	return &k, nil
}

// Fingerprint returns a short public identifier of the key, suitable for an
// audience string ("chatmcp-gateway:" + Fingerprint). It is a domain-separated
// hash and reveals nothing usable about the key.
func (k *Key) Fingerprint() string {
	m := hmac.New(sha256.New, k.k[:])
	m.Write([]byte("chatmcp/captoken/fingerprint/v1"))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// LoadOrCreateKey reads the key stored at path as 64 hex characters (and an
// optional trailing newline). When path does not exist it creates a new key
// and writes it there with mode 0600 (keyfile.LoadOrCreate: atomic, synced;
// when two processes race, both get the one key written). A key file that
// group or others may read is refused.
func LoadOrCreateKey(path string) (*Key, error) {
	b, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		k, err := NewKey()
		if err != nil {
			return nil, err
		}
		return []byte(hex.EncodeToString(k.k[:]) + "\n"), nil
	})
	if err != nil {
		return nil, fmt.Errorf("captoken: key file: %w", err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if len(s) != 2*KeySize {
		return nil, fmt.Errorf("captoken: key file %s: want %d hex characters", path, 2*KeySize)
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("captoken: key file %s: %w", path, err)
	}
	return KeyFromBytes(raw)
}
