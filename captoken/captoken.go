// Package captoken implements ChatMCP's capability tokens: macaroon-style
// HMAC-SHA256 chains that a gateway mints with its root key, that any holder
// can attenuate offline, and that only the gateway can verify. It knows
// nothing of HTTP or MCP; the gateway decides what a tool name is.
//
// A token is a root block {id, audience, subject, tools, expires} followed by
// caveat blocks, each of which may narrow the tools, shorten the expiry or
// constrain arguments. The chain value is
//
//	sig_0 = HMAC-SHA256(root key, "chatmcp/captoken/v1\x00" || root block)
//	sig_i = HMAC-SHA256(sig_{i-1}, caveat block i)
//
// and the token carries only the last value. A holder can append a caveat
// (it knows sig_n) but cannot remove or change one (that needs an earlier
// sig_i, which HMAC does not reveal), and a tool is allowed only when every
// block allows it, so no attenuation can widen a token. See
// docs/gateway-tokens.md.
package captoken

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"
)

// Sentinel errors. Verify's errors wrap exactly one of them, except when the
// revocation lookup itself fails (that error wraps the lookup's cause, and the
// token must be refused all the same).
var (
	// ErrMalformed: the token is not a well-formed, canonical token.
	ErrMalformed = errors.New("malformed token")
	// ErrSignature: the MAC chain does not verify under the verifier's key
	// (forged, tampered, caveat removed, or another gateway's token).
	ErrSignature = errors.New("token signature invalid")
	// ErrExpired: the effective expiry (the earliest of all blocks) has passed.
	ErrExpired = errors.New("token expired")
	// ErrAudience: the token was minted for another audience.
	ErrAudience = errors.New("token audience mismatch")
	// ErrRevoked: the token's id is revoked.
	ErrRevoked = errors.New("token revoked")
)

// rootTag separates the root MAC from any other use of the key.
const rootTag = "chatmcp/captoken/v1\x00"

// Claims are what a root block states. Mint fills ID when it is empty.
type Claims struct {
	// ID is 32 lowercase hex characters (16 bytes). If empty, Mint picks a
	// random one; read it back with Parse.
	ID string
	// Audience names the gateway that accepts the token. Required.
	Audience string
	// Subject names the principal, for audit. May be empty.
	Subject string
	// Tools are path.Match globs over exposed tool names. At least one.
	Tools []string
	// Expires is when the token stops being valid (second precision).
	// Required.
	Expires time.Time
}

// ArgConstraint limits one argument of the tools matching Tool: when a call
// to such a tool is checked, argument Arg must be present, be a JSON string,
// and match one of Values (path.Match globs, so "*" does not cross "/").
type ArgConstraint struct {
	Tool   string
	Arg    string
	Values []string
}

// Caveat narrows a token. Zero fields narrow nothing; at least one must be set.
type Caveat struct {
	// Tools, if non-nil, are the only tools this caveat allows (globs). An
	// empty non-nil slice allows none.
	Tools []string
	// Expires, if non-zero, is an expiry; the token's effective expiry is the
	// earliest of all blocks', so a later one has no effect.
	Expires time.Time
	// Args, if non-empty, constrain arguments.
	Args []ArgConstraint
	// Approver, if non-empty, names the one principal (a wallet address)
	// whose signed approval statement the verifier requires for this
	// chain's calls that wait for approval. A chain names at most one
	// approver: a caveat naming a different one than an earlier block is
	// refused, so nobody holding the token can replace the approver.
	Approver string
	// Holder, if non-empty, names the principal the token is delegated to
	// (an agent's wallet address): for audit, and so that a verifier can
	// refuse the holder as its own approver. It is not a proof of
	// possession; the token stays a bearer credential. At most one per
	// chain, as for Approver.
	Holder string
	// Budget, if non-nil, caps what a payment signer (chatmcp-signer)
	// signs for this chain and every token derived from it: at most
	// Amount base units in any rolling Period. A verifier that moves no
	// value ignores it.
	Budget *Budget
	// Nonce, if non-nil, is NonceSize random bytes (NewNonce) that make
	// this caveat, and so the token's chain id, unique: two tokens derived
	// from one parent with otherwise equal caveats are then two tokens, and
	// revoking one (by its chain id) leaves the other. It narrows nothing
	// and a verifier ignores it otherwise; a caveat needs at least one
	// other field.
	Nonce []byte
}

// NonceSize is the size of a caveat nonce in bytes.
const NonceSize = 16

// NewNonce returns NonceSize fresh random bytes for Caveat.Nonce.
func NewNonce() ([]byte, error) {
	n := make([]byte, NonceSize)
	if _, err := rand.Read(n); err != nil {
		return nil, fmt.Errorf("captoken: generating nonce: %w", err)
	}
	return n, nil
}

// Block is one block of a verified or parsed token. Block 0 is the root
// block, the rest are caveats.
type Block struct {
	// ID, Audience and Subject are set in the root block only.
	ID       string
	Audience string
	Subject  string
	// Tools: the globs this block allows; nil in a caveat means no tool
	// restriction.
	Tools []string
	// Expires: zero in a caveat means no expiry restriction.
	Expires time.Time
	Args    []ArgConstraint
	// Approver and Holder: set in caveats only (see Caveat).
	Approver string
	Holder   string
	// Budget: set in caveats only (see Caveat).
	Budget *Budget
	// Nonce: set in caveats only (see Caveat); nil or NonceSize bytes.
	Nonce []byte

	id [idSize]byte
}

func (b *Block) validate(root bool) error {
	if root {
		if b.Audience == "" {
			return errors.New("empty audience")
		}
		if len(b.Tools) == 0 {
			return errors.New("root block allows no tools")
		}
	}
	if root && (b.Approver != "" || b.Holder != "" || b.Budget != nil || b.Nonce != nil) {
		return errors.New("root block names an approver, holder, budget or nonce")
	}
	if b.Nonce != nil && len(b.Nonce) != NonceSize {
		return fmt.Errorf("nonce of %d bytes, want %d", len(b.Nonce), NonceSize)
	}
	if b.Budget != nil {
		if err := b.Budget.validate(); err != nil {
			return err
		}
	}
	for _, s := range []string{b.Audience, b.Subject, b.Approver, b.Holder} {
		if len(s) > MaxStringLen {
			return fmt.Errorf("string of %d bytes exceeds %d", len(s), MaxStringLen)
		}
	}
	if len(b.Tools) > MaxPatterns {
		return fmt.Errorf("%d tool patterns exceed %d", len(b.Tools), MaxPatterns)
	}
	for _, p := range b.Tools {
		if err := validString(p); err != nil {
			return err
		}
		if err := validPattern(p); err != nil {
			return err
		}
	}
	if !b.Expires.IsZero() && b.Expires.Unix() <= 0 {
		return errors.New("expiry before 1970")
	}
	if b.Args != nil && len(b.Args) == 0 {
		return errors.New("empty argument constraint list")
	}
	if len(b.Args) > MaxArgConstraints {
		return fmt.Errorf("%d argument constraints exceed %d", len(b.Args), MaxArgConstraints)
	}
	for _, a := range b.Args {
		if err := validPattern(a.Tool); err != nil {
			return fmt.Errorf("argument constraint: %w", err)
		}
		if a.Arg == "" {
			return errors.New("argument constraint names no argument")
		}
		if len(a.Values) == 0 || len(a.Values) > MaxArgValues {
			return fmt.Errorf("argument constraint on %q has %d values, want 1 to %d", a.Arg, len(a.Values), MaxArgValues)
		}
		for _, s := range append([]string{a.Tool, a.Arg}, a.Values...) {
			if err := validString(s); err != nil {
				return err
			}
		}
		for _, v := range a.Values {
			if err := validPattern(v); err != nil {
				return fmt.Errorf("argument constraint: %w", err)
			}
		}
	}
	return nil
}

func validString(s string) error {
	if len(s) > MaxStringLen {
		return fmt.Errorf("string of %d bytes exceeds %d", len(s), MaxStringLen)
	}
	return nil
}

func fmtID(id [idSize]byte) string { return hex.EncodeToString(id[:]) }

// NewID returns a fresh random token id.
func NewID() (string, error) {
	var id [idSize]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("captoken: generating id: %w", err)
	}
	return fmtID(id), nil
}

// Mint returns a new token for c, signed with key.
func Mint(key *Key, c Claims) (string, error) {
	if key == nil {
		return "", errors.New("captoken: mint: nil key")
	}
	if c.ID == "" {
		id, err := NewID()
		if err != nil {
			return "", err
		}
		c.ID = id
	}
	var id [idSize]byte
	raw, err := hex.DecodeString(c.ID)
	if err != nil || len(raw) != idSize || fmtID([idSize]byte(raw)) != c.ID {
		return "", fmt.Errorf("captoken: mint: id %q is not %d lowercase hex characters", c.ID, 2*idSize)
	}
	copy(id[:], raw)
	root := Block{
		ID: c.ID, Audience: c.Audience, Subject: c.Subject,
		Tools: slices.Clone(c.Tools), Expires: c.Expires.Truncate(time.Second).UTC(), id: id,
	}
	if c.Expires.IsZero() {
		return "", errors.New("captoken: mint: no expiry")
	}
	if err := root.validate(true); err != nil {
		return "", fmt.Errorf("captoken: mint: %w", err)
	}
	return encodeToken([]Block{root}, rootMAC(key, encodeRoot(&root))), nil
}

// Attenuate returns token narrowed by c. It needs no key: it extends the MAC
// chain from the token's last value. It does not verify token (it cannot);
// a bad token stays bad.
func Attenuate(token string, c Caveat) (string, error) {
	d, err := decode(token)
	if err != nil {
		return "", fmt.Errorf("captoken: attenuate: %w", err)
	}
	if len(d.blocks)-1 >= MaxCaveats {
		return "", fmt.Errorf("captoken: attenuate: token already has %d caveats", MaxCaveats)
	}
	b := Block{Tools: slices.Clone(c.Tools), Args: slices.Clone(c.Args), Approver: c.Approver, Holder: c.Holder,
		Nonce: slices.Clone(c.Nonce)}
	if c.Budget != nil {
		bb := *c.Budget
		b.Budget = &bb
	}
	if !c.Expires.IsZero() {
		b.Expires = c.Expires.Truncate(time.Second).UTC()
	}
	if len(c.Args) == 0 {
		b.Args = nil
	}
	if b.Tools == nil && b.Expires.IsZero() && b.Args == nil && b.Approver == "" && b.Holder == "" && b.Budget == nil {
		return "", errors.New("captoken: attenuate: caveat restricts nothing")
	}
	if err := b.validate(false); err != nil {
		return "", fmt.Errorf("captoken: attenuate: %w", err)
	}
	if err := consistentNames(append(slices.Clone(d.blocks), b)); err != nil {
		return "", fmt.Errorf("captoken: attenuate: %w", err)
	}
	enc := encodeCaveat(&b)
	sig := chainMAC(d.sig, enc)
	blocks := append(d.blocks, b)
	out := encodeToken(blocks, sig)
	if len(out) > MaxTokenSize {
		return "", fmt.Errorf("captoken: attenuate: token would be %d bytes, more than %d", len(out), MaxTokenSize)
	}
	return out, nil
}

func rootMAC(key *Key, root []byte) [sigSize]byte {
	m := hmac.New(sha256.New, key.k[:])
	m.Write([]byte(rootTag))
	m.Write(root)
	return [sigSize]byte(m.Sum(nil))
}

func chainMAC(prev [sigSize]byte, block []byte) [sigSize]byte {
	m := hmac.New(sha256.New, prev[:])
	m.Write(block)
	return [sigSize]byte(m.Sum(nil))
}

// Parse decodes token WITHOUT verifying it, for holders that want to show
// what a token claims (its id, expiry, tools). Nothing it returns may be
// trusted for an access decision; the Verified it returns has no verifier
// behind it.
func Parse(token string) (*Verified, error) {
	d, err := decode(token)
	if err != nil {
		return nil, fmt.Errorf("captoken: %w", err)
	}
	return newVerified(d.blocks), nil
}

// Revocations says whether a token id (32 hex digits) or a chain id (64 hex
// digits, Verified.ChainID) is revoked. Verify asks for the token id and
// then for the chain id of every prefix of the token's chain (ChainIDs), so
// revoking a token id revokes every token sharing it, and revoking a chain
// id revokes that exact chain and every token derived from it, never its
// parents. An error means the answer is unknown; Verify then refuses the
// token.
type Revocations interface {
	IsRevoked(ctx context.Context, id string) (bool, error)
}

// NoRevocations is a Revocations that revokes nothing, for verifiers that
// deliberately have no revocation list (tests, offline inspection).
type NoRevocations struct{}

// IsRevoked always returns false.
func (NoRevocations) IsRevoked(context.Context, string) (bool, error) { return false, nil }

// Verifier checks tokens for one gateway.
type Verifier struct {
	// Key is the root key. Required.
	Key *Key
	// Audience must equal the token's audience. Required.
	Audience string
	// Revocations is consulted for every token. Required (use NoRevocations
	// to opt out explicitly); a nil value refuses every token.
	Revocations Revocations
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Verified is a token whose chain, audience, expiry and revocation status
// have been checked.
type Verified struct {
	ID      string
	Subject string
	// Expires is the effective expiry: the earliest of all blocks.
	Expires time.Time
	// Approver is the principal the chain names as the approver of its
	// calls that wait for approval (Caveat.Approver); "" when none.
	Approver string
	// Holder is the principal the chain names as its holder
	// (Caveat.Holder); "" when none.
	Holder string
	// Blocks are the root block and the caveats, in order.
	Blocks []Block
}

func newVerified(blocks []Block) *Verified {
	v := &Verified{ID: blocks[0].ID, Subject: blocks[0].Subject, Expires: blocks[0].Expires, Blocks: blocks}
	for _, b := range blocks[1:] {
		if !b.Expires.IsZero() && b.Expires.Before(v.Expires) {
			v.Expires = b.Expires
		}
		if b.Approver != "" {
			v.Approver = b.Approver
		}
		if b.Holder != "" {
			v.Holder = b.Holder
		}
	}
	return v
}

// consistentNames checks that the blocks name at most one approver and at
// most one holder: a later caveat may repeat an earlier one's name (that
// changes nothing) but never replace it, since whoever holds a delegated
// token can append caveats and must not be able to pick its own approver.
func consistentNames(blocks []Block) error {
	var approver, holder string
	for _, b := range blocks {
		if b.Approver != "" {
			if approver != "" && approver != b.Approver {
				return errors.New("caveats name different approvers")
			}
			approver = b.Approver
		}
		if b.Holder != "" {
			if holder != "" && holder != b.Holder {
				return errors.New("caveats name different holders")
			}
			holder = b.Holder
		}
	}
	return nil
}

// Verify decodes token, recomputes its MAC chain with the key and compares
// it in constant time, then checks audience, expiry and revocation (of the
// token id, then of every prefix chain id), in that order. Only a nil error means the token may be used.
func (v *Verifier) Verify(ctx context.Context, token string) (*Verified, error) {
	if v.Key == nil || v.Audience == "" {
		return nil, errors.New("captoken: verifier has no key or audience")
	}
	d, err := decode(token)
	if err != nil {
		return nil, fmt.Errorf("captoken: %w", err)
	}
	sig := rootMAC(v.Key, d.raw[0])
	for _, raw := range d.raw[1:] {
		sig = chainMAC(sig, raw)
	}
	if !hmac.Equal(sig[:], d.sig[:]) {
		return nil, fmt.Errorf("captoken: %w", ErrSignature)
	}
	vt := newVerified(d.blocks)
	// The audience check compares public strings; constant time is not needed.
	if d.blocks[0].Audience != v.Audience {
		return nil, fmt.Errorf("captoken: %w: token is for %q", ErrAudience, d.blocks[0].Audience)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if !now.Before(vt.Expires) {
		return nil, fmt.Errorf("captoken: %w at %s", ErrExpired, vt.Expires.Format(time.RFC3339))
	}
	if v.Revocations == nil {
		return nil, errors.New("captoken: verifier has no revocation list")
	}
	revoked, err := v.Revocations.IsRevoked(ctx, vt.ID)
	if err != nil {
		return nil, fmt.Errorf("captoken: checking revocation of %s: %w", vt.ID, err)
	}
	if revoked {
		return nil, fmt.Errorf("captoken: %w: %s", ErrRevoked, vt.ID)
	}
	for _, c := range vt.ChainIDs() {
		revoked, err := v.Revocations.IsRevoked(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("captoken: checking revocation of chain %s: %w", c, err)
		}
		if revoked {
			return nil, fmt.Errorf("captoken: %w: chain %s", ErrRevoked, c)
		}
	}
	return vt, nil
}

// Allows reports whether every block allows the tool name. It ignores
// argument constraints: use it to filter tools/list, and AllowsCall for
// tools/call.
func (v *Verified) Allows(tool string) bool {
	for _, b := range v.Blocks {
		if b.Tools != nil && !matchAny(b.Tools, tool) {
			return false
		}
	}
	return true
}

// AllowsCall reports whether a call of tool with args is allowed: Allows
// holds, and every argument constraint of every block whose Tool glob
// matches tool is met by args.
func (v *Verified) AllowsCall(tool string, args map[string]any) bool {
	if !v.Allows(tool) {
		return false
	}
	for _, b := range v.Blocks {
		for _, a := range b.Args {
			if ok, _ := path.Match(a.Tool, tool); !ok {
				continue
			}
			s, isString := args[a.Arg].(string)
			if !isString || !matchAny(a.Values, s) {
				return false
			}
		}
	}
	return true
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}
