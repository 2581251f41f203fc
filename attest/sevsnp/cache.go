package sevsnp

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/google/go-sev-guest/abi"
)

// endorsementKey is a VCEK or VLEK whose certificate chain has been verified
// to a trusted AMD root, with what a report signed by it must agree with.
type endorsementKey struct {
	pub *ecdsa.PublicKey
	// signer is VCEK or VLEK.
	signer abi.ReportSigner
	// productLine is the product line whose roots certified the key.
	productLine string
	// notBefore and notAfter bound the validity of the whole chain: the
	// latest NotBefore and the earliest NotAfter of the key's certificate,
	// its ASK (or ASVK) and its ARK.
	notBefore, notAfter time.Time
	// tcb is the TCB_VERSION the certificate was issued for.
	tcb uint64
	// hwid is the chip's hardware ID from a VCEK certificate (nil for VLEK).
	hwid []byte
}

// keyCache holds verified endorsement keys by the SHA-256 of their
// certificate's DER bytes. Only keys whose chain verified are stored, so a
// peer cannot fill it with keys of its own; it is bounded all the same.
type keyCache struct {
	mu   sync.RWMutex
	max  int
	keys map[[sha256.Size]byte]*endorsementKey
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, keys: make(map[[sha256.Size]byte]*endorsementKey)}
}

func (c *keyCache) get(h [sha256.Size]byte) *endorsementKey {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.keys[h]
}

func (c *keyCache) put(h [sha256.Size]byte, k *endorsementKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.keys[h]; !ok && len(c.keys) >= c.max {
		// Evict an arbitrary entry: a miss only costs one chain walk.
		for old := range c.keys {
			delete(c.keys, old)
			break
		}
	}
	c.keys[h] = k
}

func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.keys)
}
