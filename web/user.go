package web

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/internal/keyfile"
	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/wallet"
)

// user is a signed-in wallet: its chat client (not safe for concurrent
// use, so guarded by mu), a second client that watches the relay, the
// unread counts and the browsers listening for live updates.
type user struct {
	s    *Server
	addr wallet.Address

	mu     sync.Mutex
	c      *chat.Client
	read   map[string]int64 // last seq the person saw, by conversation (persisted)
	latest map[string]int64 // newest seq from someone else, by conversation
	unread map[string]int   // messages from others after read, by conversation

	watcher *chat.Client
	subMu   sync.Mutex
	subs    map[chan liveEvent]struct{}
	recent  []liveEvent // the last maxRecent events, replayed to pages that subscribe late
	lastSeq int64       // the newest seq delivered
}

// maxRecent is how many live events a user keeps for pages that subscribe
// after they rendered (the gap between rendering and /events).
const maxRecent = 256

// liveEvent is what /events sends for each message the relay delivers:
// the page inserts Text with textContent, never as markup.
type liveEvent struct {
	Conversation string `json:"conversation"`
	Seq          int64  `json:"seq"`
	Folder       string `json:"folder"`
	Sender       string `json:"sender"`
	Mine         bool   `json:"mine"`
	SentAt       string `json:"sent_at"`
	Text         string `json:"text"`
	Kind         string `json:"kind,omitempty"` // an assistant message's agentapi kind
	State        string `json:"state"`          // "", "not-for-device" or "rejected"
	Problem      string `json:"problem,omitempty"`
	Unread       int    `json:"unread"`
}

func newUser(s *Server, c, watcher *chat.Client) *user {
	u := &user{s: s, addr: c.Address(), c: c, watcher: watcher, read: map[string]int64{}, latest: map[string]int64{},
		unread: map[string]int{}, subs: map[chan liveEvent]struct{}{}}
	if b, err := os.ReadFile(u.readPath()); err == nil {
		wire.Decode(b, &u.read)
	}
	return u
}

func (u *user) replaceClient(c *chat.Client) {
	u.mu.Lock()
	u.c = c
	u.mu.Unlock()
}

// readPath holds the read markers beside the chat client's state.
func (u *user) readPath() string {
	return filepath.Join(u.s.opts.Home, u.addr.String(), "web-read.json")
}

// client runs fn with the chat client, one call at a time.
func (u *user) client(fn func(*chat.Client) error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return fn(u.c)
}

// markRead records that the person saw conversation id up to seq.
func (u *user) markRead(id string, seq int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if seq <= u.read[id] {
		u.unread[id] = 0
		return
	}
	u.read[id] = seq
	u.unread[id] = 0
	if b, err := json.Marshal(u.read); err == nil {
		keyfile.WriteAtomic(u.readPath(), b, keyfile.Mode)
	}
}

func (u *user) unreadCounts() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]int, len(u.unread))
	for k, v := range u.unread {
		out[k] = v
	}
	return out
}

// watch follows the relay from the start of the mailbox (to count unread
// messages), then live, until ctx ends; it reconnects after failures.
func (u *user) watch(ctx context.Context) {
	var after int64
	backoff := time.Second
	for ctx.Err() == nil {
		start := after
		err := u.watcher.Watch(ctx, after, func(m chat.Message) error {
			after = max(after, m.Seq)
			u.deliver(m)
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		// A browser wallet's session that ended cannot sign in again by
		// itself: back off up to a minute rather than retry every second.
		if after > start {
			backoff = time.Second
		} else {
			backoff = min(2*backoff, time.Minute)
		}
		u.s.opts.Log.Warn("watching the relay", "wallet", u.addr.String(), "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
}

func (u *user) deliver(m chat.Message) {
	ev := liveEvent{Conversation: m.Conversation, Seq: m.Seq, Folder: m.Folder, Sender: m.Sender.String(),
		Mine: m.Sender.Equal(u.addr), SentAt: m.SentAt.UTC().Format("2006-01-02 15:04:05 UTC"), Text: m.Text}
	ev.State, ev.Problem = messageState(m)
	ev.Kind, ev.Text = liveText(m.Text)
	u.mu.Lock()
	if !ev.Mine && m.Seq > u.read[m.Conversation] && m.Seq > u.latest[m.Conversation] {
		u.latest[m.Conversation] = m.Seq
		u.unread[m.Conversation]++
	}
	ev.Unread = u.unread[m.Conversation]
	u.mu.Unlock()
	u.subMu.Lock()
	defer u.subMu.Unlock()
	u.recent = append(u.recent, ev)
	if len(u.recent) > maxRecent {
		u.recent = u.recent[1:]
	}
	u.lastSeq = max(u.lastSeq, ev.Seq)
	for ch := range u.subs {
		select {
		case ch <- ev:
		default: // a browser that does not read loses updates, not the server
		}
	}
}

// seen is the newest seq delivered so far: a page rendered now reflects
// everything up to it, and subscribes after it.
func (u *user) seen() int64 {
	u.subMu.Lock()
	defer u.subMu.Unlock()
	return u.lastSeq
}

// subscribe returns a channel of live events, starting with the kept
// events after seq after (events delivered while the page loaded).
func (u *user) subscribe(after int64) (chan liveEvent, func()) {
	ch := make(chan liveEvent, maxRecent+64)
	u.subMu.Lock()
	for _, ev := range u.recent {
		if ev.Seq > after {
			ch <- ev
		}
	}
	u.subs[ch] = struct{}{}
	u.subMu.Unlock()
	return ch, func() {
		u.subMu.Lock()
		delete(u.subs, ch)
		u.subMu.Unlock()
	}
}

// messageState names a message that could not be shown: not encrypted to
// this device, or rejected (tampered, forged or unverifiable).
func messageState(m chat.Message) (state, problem string) {
	switch {
	case m.Err == "":
		return "", ""
	case m.NotForDevice:
		return "not-for-device", "Not encrypted to this device: it was sent before this device signed in, or after it was removed."
	default:
		return "rejected", "Could not be verified, so it is not shown (tampered, forged or unverifiable): " + m.Err
	}
}
