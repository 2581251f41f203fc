package chat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/coder/websocket"
	"github.com/go-json-experiment/json"
)

// conversation fetches a conversation's membership history from the relay
// and verifies every op from creation on; the relay cannot add members or
// forge changes, it can only withhold the latest ones.
func (c *Client) conversation(ctx context.Context, id string) ([]*envelope.Conversation, error) {
	if !envelope.ValidID(id) {
		return nil, fmt.Errorf("conversation ID %q is not 32 lowercase hex characters", id)
	}
	var resp relayapi.ConversationResponse
	if err := c.do(ctx, http.MethodGet, relayapi.PathConversations+"/"+id, nil, &resp, true); err != nil {
		return nil, err
	}
	var states []*envelope.Conversation
	var cur *envelope.Conversation
	fresh := map[string]bool{}
	for i := range resp.Ops {
		next, err := envelope.Apply(cur, &resp.Ops[i])
		if err != nil {
			return nil, fmt.Errorf("conversation %s: %w", id, err)
		}
		if next.ID != id {
			return nil, fmt.Errorf("conversation %s: relay returned another conversation", id)
		}
		// An op its device signed at or after that device's revocation is
		// not the creator's: with a stolen key and a colluding relay it
		// could add a member everyone would then encrypt to.
		// Fetched afresh once per chain: a send must not seal to a
		// membership that a revocation it could know of invalidates.
		op := &resp.Ops[i]
		if !fresh[op.Signer.Wallet.String()] {
			delete(c.senders, op.Signer.Wallet.String())
			fresh[op.Signer.Wallet.String()] = true
		}
		revoked, err := c.deviceRevoked(ctx, op.Signer.Wallet, op.Signer.Device)
		if err != nil {
			return nil, fmt.Errorf("conversation %s: checking the signer of epoch %d: %w", id, op.Epoch, err)
		}
		if revoked != 0 && op.At >= revoked {
			return nil, fmt.Errorf("conversation %s: epoch %d was signed by device %s after its revocation", id, op.Epoch, op.Signer.Device)
		}
		states = append(states, next)
		cur = next
	}
	if cur == nil {
		return nil, fmt.Errorf("conversation %s: no membership history", id)
	}
	c.history[id] = states
	return states, nil
}

// Membership returns a conversation's current membership, verified op by
// op from its creation (the relay can withhold the latest ops, not forge
// them).
func (c *Client) Membership(ctx context.Context, id string) (*envelope.Conversation, error) {
	states, err := c.conversation(ctx, id)
	if err != nil {
		return nil, err
	}
	return states[len(states)-1], nil
}

func (c *Client) stateAt(ctx context.Context, id string, epoch uint64) (*envelope.Conversation, error) {
	states := c.history[id]
	if uint64(len(states)) < epoch {
		var err error
		if states, err = c.conversation(ctx, id); err != nil {
			return nil, err
		}
	}
	if epoch == 0 || uint64(len(states)) < epoch {
		return nil, fmt.Errorf("conversation %s has no epoch %d", id, epoch)
	}
	return states[epoch-1], nil
}

// User fetches a user's published devices (keeping only certificates that
// verify and name them) and proof-of-work difficulty.
func (c *Client) User(ctx context.Context, a wallet.Address) (*relayapi.UserResponse, error) {
	var u relayapi.UserResponse
	if err := c.do(ctx, http.MethodGet, relayapi.PathUsers+"/"+a.String(), nil, &u, true); err != nil {
		return nil, err
	}
	var ok []envelope.DeviceCert
	for _, d := range u.Devices {
		if d.Verify() == nil && d.Wallet.Equal(a) {
			ok = append(ok, d)
		}
	}
	u.Devices = ok
	var revs []envelope.Revocation
	for _, rv := range u.Revocations {
		if rv.Verify() == nil && rv.Wallet.Equal(a) {
			revs = append(revs, rv)
		}
	}
	u.Revocations = revs
	return &u, nil
}

// deviceRevoked returns when a wallet's device was revoked (0: not as far
// as the relay tells). Entries are re-fetched after a minute and on every
// Read.
func (c *Client) deviceRevoked(ctx context.Context, a wallet.Address, device string) (int64, error) {
	e := c.senders[a.String()]
	if e == nil || c.opts.Now().Sub(e.fetched) > time.Minute {
		u, err := c.User(ctx, a)
		if err != nil {
			return 0, err
		}
		e = &senderEntry{fetched: c.opts.Now(), revoked: map[string]int64{}}
		for _, rv := range u.Revocations {
			e.revoked[rv.Device] = rv.Revoked
		}
		c.senders[a.String()] = e
	}
	return e.revoked[device], nil
}

// ErrNotPermitted marks requests the client refuses itself, from verified
// membership, because the relay would refuse them too (not a member, not
// the group's creator).
var ErrNotPermitted = errors.New("not permitted")

// Sent acknowledges a message the relay stored.
type Sent struct {
	Conversation string
	ID           string
	Seq          int64
	// Requested are the recipients who have not allowed the sender: the
	// relay asked for a stamp for each. The message waits in their
	// requests, unless they denied the sender: then the relay dropped it,
	// and by design does not say so.
	Requested []wallet.Address
	// Withheld are the agent devices of members that got no key because
	// their evidence failed the client's agent policy (agents.go).
	Withheld []Withheld
}

// SendDM sends text to a direct conversation with to, creating it (and
// allowing to) on first use.
func (c *Client) SendDM(ctx context.Context, to wallet.Address, text string) (*Sent, error) {
	if to.Equal(c.Address()) {
		return nil, errors.New("cannot send a direct message to yourself")
	}
	id := envelope.DMID(c.Address(), to)
	_, err := c.conversation(ctx, id)
	if IsReason(err, relayapi.ReasonUnknownConversation) {
		op := &envelope.Op{Conversation: id, Kind: envelope.KindDM, Epoch: 1, Creator: c.Address(),
			Members: envelope.SortMembers([]wallet.Address{c.Address(), to}), At: c.opts.Now().UnixMilli()}
		op.Sign(c.device)
		if err := c.do(ctx, http.MethodPost, relayapi.PathConversations, relayapi.OpRequest{Op: *op}, nil, true); err != nil && !IsReason(err, relayapi.ReasonConversationExists) {
			return nil, fmt.Errorf("creating conversation: %w", err)
		}
		if err := c.setConsent(ctx, to, envelope.Allowed); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return c.send(ctx, id, text, to)
}

// checkDM refuses to treat as the direct conversation with peer anything
// but exactly that: a direct conversation of the two of them at their
// DMID, unchanged since its creation.
func (c *Client) checkDM(states []*envelope.Conversation, peer wallet.Address) error {
	for _, st := range states {
		if !st.IsDM(c.Address(), peer) {
			return fmt.Errorf("conversation %s is not the direct conversation of you and %s (kind %s, %d members): refusing to send", states[0].ID, peer, st.Kind, len(st.Members))
		}
	}
	return nil
}

// CreateGroup creates a group of the caller and members and allows every
// member; it returns the conversation ID.
func (c *Client) CreateGroup(ctx context.Context, members []wallet.Address) (string, error) {
	op, err := envelope.NewGroupOp(c.opts.Rand, c.Address(), members, c.opts.Now())
	if err != nil {
		return "", err
	}
	op.Sign(c.device)
	if err := c.postOp(ctx, relayapi.PathConversations, op); err != nil {
		return "", fmt.Errorf("creating group: %w", err)
	}
	for _, m := range op.Members {
		if !m.Equal(c.Address()) {
			if err := c.setConsent(ctx, m, envelope.Allowed); err != nil {
				return "", err
			}
		}
	}
	return op.Conversation, nil
}

// postOp posts a membership op, minting stamps (bound to the op) for the
// members it adds who have not allowed us, when the relay asks for them.
func (c *Client) postOp(ctx context.Context, path string, op *envelope.Op) error {
	req := relayapi.OpRequest{Op: *op}
	err := c.do(ctx, http.MethodPost, path, req, nil, true)
	if needed := StampsNeeded(err); len(needed) > 0 {
		if req.Stamps, err = c.mint(ctx, needed, op.Hash()); err != nil {
			return err
		}
		err = c.do(ctx, http.MethodPost, path, req, nil, true)
	}
	return err
}

// mint makes the stamps the relay asked for, over hash: proof of work, or
// payments (payments.go).
func (c *Client) mint(ctx context.Context, needed []relayapi.StampNeeded, hash [32]byte) (map[string]stamp.Stamp, error) {
	out := map[string]stamp.Stamp{}
	for _, n := range needed {
		st, err := c.stampFor(ctx, n, hash)
		if err != nil {
			return nil, err
		}
		out[n.Recipient.String()] = *st
	}
	return out, nil
}

// Conversations lists the caller's current conversations: those it created
// or whose creator it allowed, and requests (from creators it has not
// answered; allow the creator to move them).
func (c *Client) Conversations(ctx context.Context) (conversations, requests []string, err error) {
	var resp relayapi.ConversationsResponse
	if err := c.do(ctx, http.MethodGet, relayapi.PathConversations, nil, &resp, true); err != nil {
		return nil, nil, err
	}
	return resp.Conversations, resp.Requests, nil
}

// AddMember adds a member to a group the caller created. A member who has
// not allowed the caller needs a stamp (minted here when the relay asks),
// and the group waits in their requests until they allow the caller.
func (c *Client) AddMember(ctx context.Context, id string, member wallet.Address) error {
	states, err := c.conversation(ctx, id)
	if err != nil {
		return err
	}
	cur := states[len(states)-1]
	if cur.IsMember(member) {
		return fmt.Errorf("%s is already a member of conversation %s", member, id)
	}
	op := &envelope.Op{Conversation: id, Kind: cur.Kind, Epoch: cur.Epoch + 1, Creator: cur.Creator,
		Members: envelope.SortMembers(append(slices.Clone(cur.Members), member)), At: c.opts.Now().UnixMilli()}
	op.Sign(c.device)
	if _, err := envelope.Apply(cur, op); err != nil {
		return fmt.Errorf("%w: %w", err, ErrNotPermitted)
	}
	if err := c.postOp(ctx, relayapi.PathConversations+"/"+id+"/ops", op); err != nil {
		return fmt.Errorf("adding member: %w", err)
	}
	delete(c.history, id)
	return c.setConsent(ctx, member, envelope.Allowed)
}

// RemoveMember removes a member from a group the caller created. Messages
// sent afterwards wrap no key for the removed member's devices.
func (c *Client) RemoveMember(ctx context.Context, id string, member wallet.Address) error {
	states, err := c.conversation(ctx, id)
	if err != nil {
		return err
	}
	cur := states[len(states)-1]
	if !cur.IsMember(member) {
		return fmt.Errorf("%s is not a member of conversation %s", member, id)
	}
	var rest []wallet.Address
	for _, m := range cur.Members {
		if !m.Equal(member) {
			rest = append(rest, m)
		}
	}
	if len(rest) == 0 {
		return errors.New("cannot remove the last member")
	}
	op := &envelope.Op{Conversation: id, Kind: cur.Kind, Epoch: cur.Epoch + 1, Creator: cur.Creator, Members: rest, At: c.opts.Now().UnixMilli()}
	op.Sign(c.device)
	if _, err := envelope.Apply(cur, op); err != nil {
		return fmt.Errorf("%w: %w", err, ErrNotPermitted)
	}
	if err := c.postOp(ctx, relayapi.PathConversations+"/"+id+"/ops", op); err != nil {
		return fmt.Errorf("removing member: %w", err)
	}
	delete(c.history, id)
	return nil
}

// Send seals text to every current device of every current member and
// posts it, minting stamps for recipients who ask for them.
// A conversation at a direct-message ID is sent to only through SendDM,
// which checks it is the direct conversation with the peer.
func (c *Client) Send(ctx context.Context, id, text string) (*Sent, error) {
	return c.send(ctx, id, text, wallet.Address{})
}

// send sends to id; with a non-zero dmPeer, id must be the direct
// conversation with dmPeer.
func (c *Client) send(ctx context.Context, id, text string, dmPeer wallet.Address) (*Sent, error) {
	for attempt := 0; ; attempt++ {
		s, err := c.sendOnce(ctx, id, text, dmPeer)
		if attempt == 0 && IsReason(err, relayapi.ReasonEpochChanged) {
			continue // membership changed under us: refresh and reseal
		}
		return s, err
	}
}

func (c *Client) sendOnce(ctx context.Context, id, text string, dmPeer wallet.Address) (*Sent, error) {
	states, err := c.conversation(ctx, id)
	if err != nil {
		return nil, err
	}
	if !dmPeer.IsZero() {
		if err := c.checkDM(states, dmPeer); err != nil {
			return nil, fmt.Errorf("%w: %w", err, ErrNotPermitted)
		}
	}
	cur := states[len(states)-1]
	if !cur.IsMember(c.Address()) {
		return nil, fmt.Errorf("you are not a member of conversation %s: %w", id, ErrNotPermitted)
	}
	var certs []envelope.DeviceCert
	var withheld []Withheld
	for _, m := range cur.Members {
		u, err := c.User(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("looking up %s: %w", m, err)
		}
		if len(u.Devices) == 0 && cur.Kind == envelope.KindDM {
			return nil, fmt.Errorf("%s has no devices on this relay: they must run 'chatmcp chat login' once before anyone can write to them", m)
		}
		ok, no := c.keyable(ctx, m, u.Devices)
		if len(ok) == 0 && len(no) > 0 && cur.Kind == envelope.KindDM {
			return nil, fmt.Errorf("not sending to %s: %s: %w", m, no[0].Reason, ErrAgentRefused)
		}
		certs, withheld = append(certs, ok...), append(withheld, no...)
	}
	env, err := envelope.Seal(c.opts.Rand, c.device, cur, certs, []byte(text), c.opts.Now())
	if err != nil {
		return nil, err
	}
	s, err := c.Post(ctx, env)
	if s != nil {
		s.Withheld = withheld
	}
	return s, err
}

// Post sends an envelope sealed by this device, minting stamps when the
// relay asks for them.
func (c *Client) Post(ctx context.Context, env *envelope.Envelope) (*Sent, error) {
	raw, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	req := relayapi.SendRequest{Envelope: raw}
	var resp relayapi.SendResponse
	var requested []wallet.Address
	err = c.do(ctx, http.MethodPost, relayapi.PathMessages, req, &resp, true)
	if needed := StampsNeeded(err); len(needed) > 0 {
		if req.Stamps, err = c.mint(ctx, needed, env.Hash()); err != nil {
			return nil, err
		}
		for _, n := range needed {
			requested = append(requested, n.Recipient)
		}
		err = c.do(ctx, http.MethodPost, relayapi.PathMessages, req, &resp, true)
	}
	if err != nil {
		return nil, err
	}
	return &Sent{Conversation: env.Conversation, ID: resp.ID, Seq: resp.Seq, Requested: requested}, nil
}

// Message is a delivered message after verification and decryption. When
// it could not be opened, Err says why and Text is empty.
type Message struct {
	Seq          int64  `json:"seq"`
	Folder       string `json:"folder"`
	Conversation string `json:"conversation"`
	// Kind is the conversation's kind from its verified membership
	// (envelope.KindDM or KindGroup); empty when that could not be verified.
	Kind         string         `json:"kind,omitempty"`
	ID           string         `json:"id"`
	Sender       wallet.Address `json:"sender"`
	SenderDevice string         `json:"sender_device"`
	SentAt       time.Time      `json:"sent_at"`
	Text         string         `json:"text,omitempty"`
	Err          string         `json:"error,omitempty"`
	// NotForDevice is set when the envelope verified but wraps no key for
	// this device (sent before it existed, or after it was removed).
	NotForDevice bool `json:"not_for_device,omitempty"`
	// Recipients are the devices the envelope wraps a content key for:
	// who can read the message (set when the envelope verified).
	Recipients []string `json:"recipients,omitempty"`
}

// ReadOptions select messages. Zero values mean: all conversations, both
// folders, from the start, 100 per page.
type ReadOptions struct {
	Conversation string
	Folder       string
	After        int64
	Limit        int
}

// Read returns one page of messages and the cursor for the next page.
func (c *Client) Read(ctx context.Context, o ReadOptions) ([]Message, int64, error) {
	q := url.Values{}
	q.Set("after", strconv.FormatInt(o.After, 10))
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Folder != "" {
		q.Set("folder", o.Folder)
	}
	if o.Conversation != "" {
		if !envelope.ValidID(o.Conversation) {
			return nil, 0, fmt.Errorf("conversation ID %q is not 32 lowercase hex characters", o.Conversation)
		}
		q.Set("conversation", o.Conversation)
	}
	var page relayapi.MessagesResponse
	if err := c.do(ctx, http.MethodGet, relayapi.PathMessages+"?"+q.Encode(), nil, &page, true); err != nil {
		return nil, 0, err
	}
	clear(c.senders) // learn of revocations at least once per page
	out := make([]Message, 0, len(page.Messages))
	for _, m := range page.Messages {
		out = append(out, c.open(ctx, m))
	}
	return out, page.Next, nil
}

// ReadAll follows the cursor to the end.
func (c *Client) ReadAll(ctx context.Context, o ReadOptions) ([]Message, error) {
	var all []Message
	for {
		page, next, err := c.Read(ctx, o)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) == 0 || next == o.After {
			return all, nil
		}
		o.After = next
	}
}

// open verifies and decrypts one delivered message.
func (c *Client) open(ctx context.Context, m relayapi.Message) Message {
	out := Message{Seq: m.Seq, Folder: m.Folder, Sender: m.Sender}
	env, err := envelope.Parse(m.Envelope)
	if err != nil {
		out.Err = err.Error()
		return out
	}
	out.Conversation, out.ID, out.SenderDevice, out.SentAt = env.Conversation, env.ID, env.Sender.Device, time.UnixMilli(env.SentAt).UTC()
	if !env.Sender.Wallet.Equal(m.Sender) {
		out.Err = "envelope: sender does not match the relay's record"
		return out
	}
	conv, err := c.stateAt(ctx, env.Conversation, env.Epoch)
	if err != nil {
		out.Err = err.Error()
		return out
	}
	out.Kind = conv.Kind
	if err := env.Verify(); err != nil {
		out.Err = err.Error()
		return out
	}
	for _, k := range env.Keys {
		out.Recipients = append(out.Recipients, k.Device)
	}
	// A device's revocation ends its authority: what it signed at or after
	// the revocation time is not from the wallet's owner. (A stolen key can
	// backdate SentAt; an honest relay refuses that — it checks the time
	// and the device — but a colluding one could deliver it.)
	revoked, err := c.deviceRevoked(ctx, env.Sender.Wallet, env.Sender.Device)
	if err != nil {
		out.Err = fmt.Sprintf("checking the sender's device: %v", err)
		return out
	}
	if revoked != 0 && env.SentAt >= revoked {
		out.Err = fmt.Sprintf("envelope: sender device %s was revoked at %s, before this message", env.Sender.Device, time.UnixMilli(revoked).UTC().Format(time.RFC3339))
		return out
	}
	pt, err := envelope.Open(env, c.device, conv)
	if err != nil {
		out.Err = err.Error()
		out.NotForDevice = errors.Is(err, envelope.ErrNotRecipient)
		return out
	}
	out.Text = string(pt)
	return out
}

// Watch streams messages after the cursor over a WebSocket, live, calling
// fn for each until ctx is done or fn returns an error.
func (c *Client) Watch(ctx context.Context, after int64, fn func(Message) error) error {
	if err := c.session(ctx); err != nil {
		return err
	}
	u := *c.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path += relayapi.PathWatch
	u.RawQuery = "after=" + strconv.FormatInt(after, 10)
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient: c.opts.HTTPClient,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + c.token}},
	})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			c.token = ""
			if err := c.Login(ctx); err != nil {
				return err
			}
			return c.Watch(ctx, after, fn)
		}
		return fmt.Errorf("watching: %w", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(int64(envelope.MaxEnvelope) + 4096)
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watching: %w", err)
		}
		var m relayapi.Message
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("watching: malformed message from relay: %w", err)
		}
		if err := fn(c.open(ctx, m)); err != nil {
			return err
		}
	}
}

func (c *Client) setConsent(ctx context.Context, peer wallet.Address, state string) error {
	u := &envelope.ConsentUpdate{Peer: peer, State: state, At: c.opts.Now().UnixMilli()}
	u.Sign(c.device)
	if err := c.do(ctx, http.MethodPut, relayapi.PathConsent, relayapi.ConsentRequest{Update: *u}, nil, true); err != nil {
		return fmt.Errorf("setting consent for %s: %w", peer, err)
	}
	return nil
}

// Allow moves peer's requests to the inbox; later messages need no stamp.
func (c *Client) Allow(ctx context.Context, peer wallet.Address) error {
	return c.setConsent(ctx, peer, envelope.Allowed)
}

// Deny drops peer's pending requests; nothing more from peer is delivered.
func (c *Client) Deny(ctx context.Context, peer wallet.Address) error {
	return c.setConsent(ctx, peer, envelope.Denied)
}

// SetDifficulty publishes the proof-of-work difficulty strangers must pay.
func (c *Client) SetDifficulty(ctx context.Context, bits int) error {
	return c.do(ctx, http.MethodPut, relayapi.PathSettings, relayapi.SettingsRequest{Difficulty: bits}, nil, true)
}

// Devices lists the wallet's devices on the relay.
func (c *Client) Devices(ctx context.Context) ([]relayapi.Device, error) {
	var resp relayapi.DevicesResponse
	if err := c.do(ctx, http.MethodGet, relayapi.PathDevices, nil, &resp, true); err != nil {
		return nil, err
	}
	return resp.Devices, nil
}

// RevokeDevice has the wallet revoke one of its devices. Messages sent
// afterwards wrap no key for it, and its sessions end.
func (c *Client) RevokeDevice(ctx context.Context, device string) error {
	if !envelope.ValidID(device) {
		return fmt.Errorf("device ID %q is not 32 lowercase hex characters", device)
	}
	r := envelope.NewRevocation(c.opts.Wallet, device, c.opts.Now())
	return c.do(ctx, http.MethodPost, relayapi.PathRevokeDevice, relayapi.RevokeRequest{Revocation: *r}, nil, true)
}
