package nitro_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"

	"github.com/chatmcp/chatmcp/internal/testvectors"
)

func newP256() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// vectorsNoSkip locates the Nitro vectors for fuzz seeds without skipping.
func vectorsNoSkip() string {
	if root := testvectors.Root(); root != "" {
		return filepath.Join(root, "nitro")
	}
	return ""
}
