package kbs

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/chatmcp/chatmcp/internal/keyfile"
)

// Sealer wraps and unwraps data keys with a key-encryption key it never
// reveals. Implementations: FileSealer (a key file, for development); a TEE
// sealing key or a cloud KMS fit the same interface. aad binds the wrapped
// key to its secret's name and version; Unseal must fail when it differs.
type Sealer interface {
	Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Unseal(ctx context.Context, ciphertext, aad []byte) ([]byte, error)
}

// FileSealer keeps a 256-bit AES-GCM key-encryption key in a file. The key
// file is as sensitive as every secret it protects together: anyone who can
// read it and the database can decrypt them. Use it for development, or
// where the disk holding it is itself protected.
type FileSealer struct {
	aead cipher.AEAD
}

const sealedVersion = 1

// LoadOrCreateFileSealer reads the key at path (64 hex digits), creating it
// with mode 0600 when missing (keyfile.LoadOrCreate: atomic, synced, refused
// when group or others may read it).
func LoadOrCreateFileSealer(path string) (*FileSealer, error) {
	b, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		return []byte(hex.EncodeToString(key) + "\n"), nil
	})
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("reading sealing key %s: not 64 hex digits", path)
	}
	return NewFileSealer(key)
}

// NewFileSealer returns a sealer using key (32 bytes) as its KEK.
func NewFileSealer(key []byte) (*FileSealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("sealing key is %d bytes, want 32", len(key))
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &FileSealer{aead: aead}, nil
}

// Seal encrypts plaintext: version byte || 12-byte random nonce || AES-GCM.
func (s *FileSealer) Seal(_ context.Context, plaintext, aad []byte) ([]byte, error) {
	return sealGCM(s.aead, sealedVersion, plaintext, aad)
}

// Unseal reverses Seal.
func (s *FileSealer) Unseal(_ context.Context, ciphertext, aad []byte) ([]byte, error) {
	return openGCM(s.aead, sealedVersion, ciphertext, aad)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealGCM uses a random 96-bit nonce: each key here encrypts one value (a
// data key) or few (a KEK wraps one data key per secret version), far below
// the 2^32 messages at which random nonces become a concern.
func sealGCM(aead cipher.AEAD, version byte, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:], plaintext, aad), nil
}

func openGCM(aead cipher.AEAD, version byte, ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < 1+aead.NonceSize()+aead.Overhead() || ciphertext[0] != version {
		return nil, errors.New("unsealing: malformed ciphertext")
	}
	pt, err := aead.Open(nil, ciphertext[1:1+aead.NonceSize()], ciphertext[1+aead.NonceSize():], aad)
	if err != nil {
		return nil, errors.New("unsealing: authentication failed (wrong key, or ciphertext moved or altered)")
	}
	return pt, nil
}

// encryptValue is envelope encryption of one secret version: a fresh data
// key encrypts the value, and the sealer wraps the data key. Both carry
// secretAAD(name, version).
func encryptValue(ctx context.Context, s Sealer, name string, version int, value []byte) (wrappedKey, ciphertext []byte, err error) {
	dk := make([]byte, 32)
	if _, err := rand.Read(dk); err != nil {
		return nil, nil, err
	}
	defer clear(dk)
	aead, err := newGCM(dk)
	if err != nil {
		return nil, nil, err
	}
	aad := secretAAD(name, version)
	ciphertext, err = sealGCM(aead, 1, value, aad)
	if err != nil {
		return nil, nil, err
	}
	wrappedKey, err = s.Seal(ctx, dk, aad)
	if err != nil {
		return nil, nil, fmt.Errorf("wrapping data key: %w", err)
	}
	return wrappedKey, ciphertext, nil
}

func decryptValue(ctx context.Context, s Sealer, name string, version int, wrappedKey, ciphertext []byte) ([]byte, error) {
	aad := secretAAD(name, version)
	dk, err := s.Unseal(ctx, wrappedKey, aad)
	if err != nil {
		return nil, fmt.Errorf("unwrapping data key: %w", err)
	}
	defer clear(dk)
	aead, err := newGCM(dk)
	if err != nil {
		return nil, err
	}
	return openGCM(aead, 1, ciphertext, aad)
}
