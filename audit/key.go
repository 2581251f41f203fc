package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/chatmcp/chatmcp/internal/keyfile"
)

// LoadOrCreateKey reads the Ed25519 signing key stored (as a hex seed) at
// path, or creates one with mode 0600 when the file does not exist
// (keyfile.LoadOrCreate: atomic, synced, refused when group or others may
// read it).
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		return []byte(hex.EncodeToString(seed) + "\n"), nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("reading audit key %s: not a hex Ed25519 seed", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// WritePublicKey writes the public half of key, hex and a newline, to path
// (mode 0644, atomically), where verifiers of the audit log read it.
func WritePublicKey(path string, key ed25519.PrivateKey) error {
	if err := keyfile.WriteAtomic(path, []byte(hex.EncodeToString(key.Public().(ed25519.PublicKey))+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing audit public key: %w", err)
	}
	return nil
}
