// Package authz decides who may call what through the gateway: it verifies
// capability tokens (with a cache keyed by the token string), keeps the
// persisted revocation list, and evaluates the optional Cedar policy over a
// call's principal, tool and arguments. Everything it cannot decide is a
// denial.
package authz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/captoken"
)

// Principal is a verified token holder.
type Principal struct {
	// TokenID is the root token id, shared by attenuated children: it is
	// what revocation and the audit log's actor name.
	TokenID string
	// ChainID is the principal id: it identifies the exact token chain
	// (captoken.Verified.ChainID), so a parent token and each token
	// attenuated from it are different principals. MCP sessions and
	// layer-2 credentials are bound to it, never to TokenID.
	ChainID string
	// Subject is the token's subject; "" when the token names none.
	Subject string
	// Expires is the effective expiry.
	Expires time.Time

	token *captoken.Verified
}

// Name is how the principal is shown in audit entries and approvals:
// the subject, or "token:<id>" when the token has none.
func (p *Principal) Name() string {
	if p.Subject != "" {
		return p.Subject
	}
	return "token:" + p.TokenID
}

// Allows reports whether the token allows the exposed name at all.
func (p *Principal) Allows(name string) bool { return p.token.Allows(name) }

// AllowsCall reports whether the token allows this call, including the
// token's own argument constraints.
func (p *Principal) AllowsCall(name string, args map[string]any) bool {
	return p.token.AllowsCall(name, args)
}

// NewPrincipal wraps a verified token.
func NewPrincipal(v *captoken.Verified) *Principal {
	return &Principal{TokenID: v.ID, ChainID: v.ChainID(), Subject: v.Subject, Expires: v.Expires, token: v}
}

// MaxCacheEntries bounds the verification cache; when full it is emptied.
const MaxCacheEntries = 10000

// Tokens verifies bearer tokens for one gateway. A successful verification
// is cached by token string until the token's expiry; a revocation removes
// the cached entries at once, so the cache never outlives a revocation.
type Tokens struct {
	verifier    *captoken.Verifier
	revocations *Revocations
	now         func() time.Time

	mu    sync.RWMutex
	cache map[string]*Principal
}

// NewTokens returns a verifier for tokens minted with key for audience.
// now is the clock; if nil, time.Now.
func NewTokens(key *captoken.Key, audience string, revs *Revocations, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{
		verifier:    &captoken.Verifier{Key: key, Audience: audience, Revocations: revs, Now: now},
		revocations: revs,
		now:         now,
		cache:       map[string]*Principal{},
	}
}

// Verify returns the principal of token, or an error wrapping one of
// captoken's sentinel errors (or a revocation lookup failure).
func (t *Tokens) Verify(ctx context.Context, token string) (*Principal, error) {
	t.mu.RLock()
	p, ok := t.cache[token]
	t.mu.RUnlock()
	if ok {
		if !t.now().Before(p.Expires) {
			t.mu.Lock()
			delete(t.cache, token)
			t.mu.Unlock()
			return nil, fmt.Errorf("captoken: %w", captoken.ErrExpired)
		}
		// The revocation set is in memory: this lookup costs a map read.
		revoked, err := t.revocations.IsRevoked(ctx, p.TokenID)
		if err != nil {
			return nil, fmt.Errorf("captoken: checking revocation of %s: %w", p.TokenID, err)
		}
		if revoked {
			return nil, fmt.Errorf("captoken: %w: %s", captoken.ErrRevoked, p.TokenID)
		}
		return p, nil
	}
	v, err := t.verifier.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	p = NewPrincipal(v)
	t.mu.Lock()
	if len(t.cache) >= MaxCacheEntries {
		t.cache = map[string]*Principal{}
	}
	t.cache[token] = p
	t.mu.Unlock()
	return p, nil
}

// Mint issues a root token.
func (t *Tokens) Mint(c captoken.Claims) (string, error) {
	c.Audience = t.verifier.Audience
	return captoken.Mint(t.verifier.Key, c)
}

// Audience is the audience tokens must carry.
func (t *Tokens) Audience() string { return t.verifier.Audience }

// Revoke persists a revocation and drops cached verifications of the id.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	if err := t.revocations.Revoke(ctx, id); err != nil {
		return err
	}
	t.mu.Lock()
	for k, p := range t.cache {
		if p.TokenID == id {
			delete(t.cache, k)
		}
	}
	t.mu.Unlock()
	return nil
}

// ErrBadID is returned for a token id that is not 32 lowercase hex digits.
var ErrBadID = errors.New("token id must be 32 lowercase hex digits")

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
