package envelope

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	Signer       DeviceCert       `json:"signer"`
	Sig          []byte           `json:"sig"`
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
	return b.BytesOrPanic()
}

// Sign fills in Signer and Sig with d's certificate and signature.
func (o *Op) Sign(d *Device) {
	o.Signer = d.Cert
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
	h.Write([]byte("chatmcp/dm/v1"))
	for _, x := range m {
		h.Write([]byte(x.String()))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:16])
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
		if op.Kind == KindDM {
			if len(op.Members) != 2 || DMID(op.Members[0], op.Members[1]) != op.Conversation {
				return nil, errors.New("membership: a direct conversation has two members and their ID")
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
	u.Signer = d.Cert
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
