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
	"slices"
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
	// Approver is the principal the chain names as the one whose signed
	// statement approves its held calls (captoken.Caveat.Approver): an
	// agent's grant names its inviter's wallet. "" when none.
	Approver string
	// Holder is the principal the chain is delegated to
	// (captoken.Caveat.Holder); "" when none.
	Holder string

	token    *captoken.Verified
	chainIDs []string // the chain id of every prefix of the chain
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
	return &Principal{TokenID: v.ID, ChainID: v.ChainID(), Subject: v.Subject, Expires: v.Expires,
		Approver: v.Approver, Holder: v.Holder, token: v, chainIDs: v.ChainIDs()}
}

// DerivedFrom reports whether p's token was attenuated from parent's: a
// holder may revoke the tokens derived from its own.
func (p *Principal) DerivedFrom(parent *Principal) bool { return p.token.DerivedFrom(parent.token) }

// revoked checks the principal's token id and the chain id of every prefix
// of its chain (captoken.Verifier.Verify's order) against revs.
func (p *Principal) revoked(ctx context.Context, revs *Revocations) error {
	for _, id := range append([]string{p.TokenID}, p.chainIDs...) {
		revoked, err := revs.IsRevoked(ctx, id)
		if err != nil {
			return fmt.Errorf("captoken: checking revocation of %s: %w", id, err)
		}
		if revoked {
			return fmt.Errorf("captoken: %w: %s", captoken.ErrRevoked, id)
		}
	}
	return nil
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
		// The revocation set is in memory: each lookup costs a map read.
		if err := p.revoked(ctx, t.revocations); err != nil {
			return nil, err
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
// id is a token id (32 hex digits: every token sharing it) or a chain id
// (64 hex digits: that exact chain and every token derived from it).
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	if err := t.revocations.Revoke(ctx, id); err != nil {
		return err
	}
	t.mu.Lock()
	for k, p := range t.cache {
		if p.TokenID == id || slices.Contains(p.chainIDs, id) {
			delete(t.cache, k)
		}
	}
	t.mu.Unlock()
	return nil
}

// ErrBadID is returned for an id that is neither a token id (32 lowercase
// hex digits) nor a chain id (64).
var ErrBadID = errors.New("token id must be 32 (or a chain id 64) lowercase hex digits")

func validID(id string) bool {
	if len(id) != 32 && len(id) != 64 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
