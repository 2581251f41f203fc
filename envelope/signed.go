package envelope

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/wallet"
	"golang.org/x/crypto/cryptobyte"
)

// Signature domain tags: every signed object has its own, so a signature
// over one kind can never be taken for another.
const (
	tagEnvelope = "chatmcp/envelope/v1"
	tagOp       = "chatmcp/membership/v1"
	tagConsent  = "chatmcp/consent/v1"
	tagKeyWrap  = "chatmcp/envelope/v1 key"
)

// Conversation ID domain tags: a direct conversation's ID and a group's ID
// are hashes under different tags, so neither can be chosen to equal the
// other (that would take a preimage of a 128-bit truncated SHA-256).
const (
	tagDMID    = "chatmcp/dm/v1"
	tagGroupID = "chatmcp/group/v1"
)

// GroupNonceSize is the size of the random nonce a group's ID derives from.
const GroupNonceSize = 16

// ErrConversationID is returned (wrapped) by Apply when a conversation's ID
// is not the one its kind derives: a direct conversation's from its two
// members, a group's from its creator and nonce. It is what stops anyone
// from squatting on the predictable ID of someone else's direct
// conversation.
var ErrConversationID = errors.New("membership: conversation ID is not derived as its kind requires")

// Conversation kinds.
const (
	KindDM    = "dm"
	KindGroup = "group"
)

// MaxMembers bounds a conversation's member list.
const MaxMembers = 256

// Op sets a conversation's member list: epoch 1 creates the conversation,
// each later epoch replaces the list. Only the creator's devices may sign
// ops after the first; a direct conversation's members never change.
type Op struct {
	Conversation string           `json:"conversation"`
	Kind         string           `json:"kind"`
	Epoch        uint64           `json:"epoch"`
	Creator      wallet.Address   `json:"creator"`
	Members      []wallet.Address `json:"members"` // sorted by address string, no duplicates
	At           int64            `json:"at"`      // Unix milliseconds
	// Nonce is set on a group's creating op only: the group's ID is
	// GroupID(Creator, Nonce).
	Nonce  []byte     `json:"nonce,omitzero"`
	Signer DeviceCert `json:"signer"`
	Sig    []byte     `json:"sig"`
}

func (o *Op) signed() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(tagOp))
	addString(&b, o.Conversation)
	addString(&b, o.Kind)
	b.AddUint64(o.Epoch)
	addString(&b, o.Creator.String())
	b.AddUint32(uint32(len(o.Members)))
	for _, m := range o.Members {
		addString(&b, m.String())
	}
	b.AddUint64(uint64(o.At))
	addString(&b, o.Signer.Device)
	// Appended only when present, so ops without a nonce keep the bytes
	// they were signed over; every field is length-prefixed, so the two
	// forms cannot be confused.
	if len(o.Nonce) > 0 {
		addBytes(&b, o.Nonce)
	}
	return b.BytesOrPanic()
}

// Hash identifies the op's signed content; stamps for the members a group
// op adds commit to it.
func (o *Op) Hash() [32]byte { return sha256.Sum256(o.signed()) }

// Sign fills in Signer (d's certificate, without evidence) and Sig.
func (o *Op) Sign(d *Device) {
	o.Signer = d.Cert.Bare()
	o.Sig = ed25519.Sign(d.sign, o.signed())
}

// Verify checks the op's structure, its signer's certificate and signature.
// It does not check who may sign (Apply does).
func (o *Op) Verify() error {
	if !ValidID(o.Conversation) {
		return errors.New("membership: conversation ID is not 32 lowercase hex characters")
	}
	if o.Kind != KindDM && o.Kind != KindGroup {
		return fmt.Errorf("membership: unknown kind %q", o.Kind)
	}
	if o.Epoch == 0 || o.At <= 0 || o.Creator.IsZero() {
		return errors.New("membership: missing epoch, time or creator")
	}
	if len(o.Nonce) != 0 && (o.Kind != KindGroup || o.Epoch != 1 || len(o.Nonce) != GroupNonceSize) {
		return fmt.Errorf("membership: a nonce (%d bytes) belongs only on a group's creating op", GroupNonceSize)
	}
	if len(o.Members) == 0 || len(o.Members) > MaxMembers {
		return fmt.Errorf("membership: %d members, want 1 to %d", len(o.Members), MaxMembers)
	}
	if !slices.IsSortedFunc(o.Members, cmpAddr) || len(slices.CompactFunc(slices.Clone(o.Members), wallet.Address.Equal)) != len(o.Members) {
		return errors.New("membership: members not sorted or duplicated")
	}
	if err := o.Signer.Verify(); err != nil {
		return fmt.Errorf("membership: signer: %w", err)
	}
	if !ed25519.Verify(o.Signer.Signing, o.signed(), o.Sig) {
		return errors.New("membership: signature does not verify")
	}
	return nil
}

func cmpAddr(a, b wallet.Address) int { return strings.Compare(a.String(), b.String()) }

// SortMembers sorts and de-duplicates a member list the way Op requires.
func SortMembers(m []wallet.Address) []wallet.Address {
	m = slices.Clone(m)
	slices.SortFunc(m, cmpAddr)
	return slices.CompactFunc(m, wallet.Address.Equal)
}

// DMID is the conversation ID of the direct conversation between a and b:
// both sides compute the same one.
func DMID(a, b wallet.Address) string {
	m := SortMembers([]wallet.Address{a, b})
	h := sha256.New()
	h.Write([]byte(tagDMID))
	for _, x := range m {
		h.Write([]byte(x.String()))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:16])
}

// GroupID is the ID of the group creator creates with nonce (GroupNonceSize
// random bytes): SHA-256("chatmcp/group/v1" || 0 || creator || 0 || nonce)
// truncated to 128 bits. The tag differs from DMID's, so a group ID cannot
// be chosen to equal a direct conversation's, and the creator is bound in,
// so nobody can claim another creator's group ID.
func GroupID(creator wallet.Address, nonce []byte) string {
	h := sha256.New()
	h.Write([]byte(tagGroupID))
	h.Write([]byte{0})
	h.Write([]byte(creator.String()))
	h.Write([]byte{0})
	h.Write(nonce)
	return fmt.Sprintf("%x", h.Sum(nil)[:16])
}

// NewGroupOp returns the unsigned creating op of a new group of creator
// and members, with a fresh nonce and the ID derived from it.
func NewGroupOp(rand io.Reader, creator wallet.Address, members []wallet.Address, now time.Time) (*Op, error) {
	nonce := make([]byte, GroupNonceSize)
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("generating group nonce: %w", err)
	}
	return &Op{Conversation: GroupID(creator, nonce), Kind: KindGroup, Epoch: 1, Creator: creator,
		Members: SortMembers(append([]wallet.Address{creator}, members...)), At: now.UnixMilli(), Nonce: nonce}, nil
}

// IsDM reports whether c is the direct conversation of exactly a and b.
func (c *Conversation) IsDM(a, b wallet.Address) bool {
	return c.Kind == KindDM && !a.Equal(b) && len(c.Members) == 2 && c.IsMember(a) && c.IsMember(b) && c.ID == DMID(a, b)
}

// Conversation is a conversation's verified membership at one epoch.
type Conversation struct {
	ID      string
	Kind    string
	Creator wallet.Address
	Epoch   uint64
	Members []wallet.Address
}

// MembersHash commits to the conversation, epoch and member list; envelopes
// carry it so a receiver knows which list the sender wrapped keys for.
func (c *Conversation) MembersHash() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte("chatmcp/members/v1"))
	addString(&b, c.ID)
	b.AddUint64(c.Epoch)
	for _, m := range c.Members {
		addString(&b, m.String())
	}
	h := sha256.Sum256(b.BytesOrPanic())
	return h[:]
}

// IsMember reports whether a is a member.
func (c *Conversation) IsMember(a wallet.Address) bool {
	return slices.ContainsFunc(c.Members, a.Equal)
}

// Apply verifies op and returns the state it leads to from cur (nil for a
// new conversation). It enforces who may change membership.
func Apply(cur *Conversation, op *Op) (*Conversation, error) {
	if err := op.Verify(); err != nil {
		return nil, err
	}
	next := &Conversation{ID: op.Conversation, Kind: op.Kind, Creator: op.Creator, Epoch: op.Epoch, Members: op.Members}
	if cur == nil {
		if op.Epoch != 1 {
			return nil, fmt.Errorf("membership: first op has epoch %d, want 1", op.Epoch)
		}
		if !op.Signer.Wallet.Equal(op.Creator) {
			return nil, errors.New("membership: creating op not signed by the creator")
		}
		if !next.IsMember(op.Creator) {
			return nil, errors.New("membership: creator is not a member")
		}
		switch op.Kind {
		case KindDM:
			if len(op.Members) != 2 {
				return nil, fmt.Errorf("membership: a direct conversation has exactly two members, not %d", len(op.Members))
			}
			if DMID(op.Members[0], op.Members[1]) != op.Conversation {
				return nil, fmt.Errorf("%w (direct: from its two members)", ErrConversationID)
			}
		case KindGroup:
			if len(op.Nonce) != GroupNonceSize {
				return nil, fmt.Errorf("membership: a group's creating op needs a %d-byte nonce", GroupNonceSize)
			}
			if GroupID(op.Creator, op.Nonce) != op.Conversation {
				return nil, fmt.Errorf("%w (group: from its creator and nonce)", ErrConversationID)
			}
		}
		return next, nil
	}
	if op.Conversation != cur.ID || op.Kind != cur.Kind || !op.Creator.Equal(cur.Creator) {
		return nil, errors.New("membership: op does not continue this conversation")
	}
	if op.Epoch != cur.Epoch+1 {
		return nil, fmt.Errorf("membership: op epoch %d does not follow %d", op.Epoch, cur.Epoch)
	}
	if cur.Kind == KindDM {
		return nil, errors.New("membership: a direct conversation's members cannot change")
	}
	if !op.Signer.Wallet.Equal(cur.Creator) {
		return nil, errors.New("membership: only the group's creator may change its members")
	}
	return next, nil
}

// Consent states.
const (
	Allowed = "allowed"
	Denied  = "denied"
)

// ConsentUpdate records a user's decision about a peer, signed by one of
// the user's devices so the relay cannot invent decisions.
type ConsentUpdate struct {
	Peer   wallet.Address `json:"peer"`
	State  string         `json:"state"`
	At     int64          `json:"at"`
	Signer DeviceCert     `json:"signer"`
	Sig    []byte         `json:"sig"`
}

func (u *ConsentUpdate) signed() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(tagConsent))
	addString(&b, u.Signer.Wallet.String())
	addString(&b, u.Peer.String())
	addString(&b, u.State)
	b.AddUint64(uint64(u.At))
	addString(&b, u.Signer.Device)
	return b.BytesOrPanic()
}

// Sign fills in Signer and Sig.
func (u *ConsentUpdate) Sign(d *Device) {
	u.Signer = d.Cert.Bare()
	u.Sig = ed25519.Sign(d.sign, u.signed())
}

// Verify checks structure, certificate and signature.
func (u *ConsentUpdate) Verify() error {
	if u.Peer.IsZero() || u.At <= 0 {
		return errors.New("consent: missing peer or time")
	}
	if u.State != Allowed && u.State != Denied {
		return fmt.Errorf("consent: unknown state %q", u.State)
	}
	if err := u.Signer.Verify(); err != nil {
		return fmt.Errorf("consent: signer: %w", err)
	}
	if !ed25519.Verify(u.Signer.Signing, u.signed(), u.Sig) {
		return errors.New("consent: signature does not verify")
	}
	return nil
}

func addString(b *cryptobyte.Builder, s string) {
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
}

func addBytes(b *cryptobyte.Builder, p []byte) {
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(p) })
}
