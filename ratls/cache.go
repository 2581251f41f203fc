package ratls

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/attest"
)

// cacheKey names one verified certificate: the hash of its key and the hash
// of the whole certificate. Both are needed: the key alone would let a new
// certificate for the same key (with other evidence) ride on an old
// verdict, and the certificate hash makes the key hash redundant only if one
// trusts SHA-256 over DER; keeping both costs nothing.
type cacheKey struct {
	spki [sha256.Size]byte
	cert [sha256.Size]byte
}

type cacheEntry struct {
	key     cacheKey
	claims  *attest.Claims
	expires time.Time
}

// cache is a small LRU of verified certificates. An entry is used only
// before its expiry, which is the earlier of the certificate's NotAfter and
// the evidence's own max_age deadline.
type cache struct {
	mu     sync.Mutex
	max    int
	ll     *list.List
	byKey  map[cacheKey]*list.Element
	hits   uint64
	misses uint64
}

func newCache(max int) *cache {
	return &cache{max: max, ll: list.New(), byKey: make(map[cacheKey]*list.Element)}
}

func (c *cache) get(k cacheKey, now time.Time) (*attest.Claims, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		c.misses++
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.byKey, k)
		c.misses++
		return nil, false
	}
	c.ll.MoveToFront(el)
	c.hits++
	return e.claims, true
}

func (c *cache) put(k cacheKey, claims *attest.Claims, expires time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		el.Value = &cacheEntry{key: k, claims: claims, expires: expires}
		c.ll.MoveToFront(el)
		return
	}
	c.byKey[k] = c.ll.PushFront(&cacheEntry{key: k, claims: claims, expires: expires})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.byKey, old.Value.(*cacheEntry).key)
	}
}

// CacheStats counts lookups in a Verifier's cache.
type CacheStats struct {
	Hits, Misses uint64
	Len          int
}

func (c *cache) stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Len: c.ll.Len()}
}
