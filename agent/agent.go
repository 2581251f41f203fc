// Package agent is the ChatMCP assistant: a member of the conversations it
// is invited to that answers when addressed, with a prompt built from the
// messages it can decrypt, an OpenAI-compatible model, and the gateway's
// tools under the grant its inviter delegated; every reply carries a
// receipt signed by its attested device key. Plaintext lives in memory
// only. The daemon around it (keys, evidence, flags) is agent/daemon.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/internal/keyfile"
	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/wallet"
)

// Options configure an Agent.
type Options struct {
	// Config is the effective configuration (its digest is in every
	// receipt). Required.
	Config agentapi.Config
	// Reader watches the relay; Writer sends. Two clients of the same
	// wallet and Home, because a chat.Client is not safe for concurrent
	// use: the agent uses Reader from one goroutine and Writer under a
	// lock. Required.
	Reader, Writer *chat.Client
	// Model is the model endpoint. Required.
	Model *ModelClient
	// Gateway opens tool sessions. If nil, no tools are offered.
	Gateway *Gateway
	// Payer pays for paid tools (Config.Pay). If nil, a payment-required
	// answer is the call's result.
	Payer *Payer
	// Data is the directory for cursors.json (which messages were
	// handled: sequence numbers, never plaintext). Required.
	Data string
	// Logger receives operational logs; they never hold plaintext. If
	// nil, discarded.
	Logger *slog.Logger
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// TurnTimeout bounds one turn, approvals included. If zero, 5 minutes.
	TurnTimeout time.Duration
	// ApprovalWait is how long an approval request says it waits (the
	// gateway's approval timeout). If zero, 2 minutes.
	ApprovalWait time.Duration
	// QueueLen is how many messages may wait per conversation; more are
	// dropped (logged). If zero, 64.
	QueueLen int
	// Refresh, if set, is called with the Writer every RefreshEvery to
	// re-attest and publish fresh evidence (members' policies may bound
	// its age). A failure is logged and retried at the next tick.
	Refresh func(ctx context.Context, w *chat.Client) error
	// RefreshEvery is the period of Refresh. If zero, 1 hour.
	RefreshEvery time.Duration
}

// Agent answers in conversations. Run it once.
type Agent struct {
	o       Options
	self    wallet.Address
	device  *envelope.Device
	digest  agentapi.Digest
	mention *regexp.Regexp

	sendMu sync.Mutex // guards o.Writer

	mu      sync.Mutex
	convs   map[string]*conv
	cursors map[string]int64 // conversation → highest handled seq
	wg      sync.WaitGroup
}

// New checks o and returns an Agent.
func New(o *Options) (*Agent, error) {
	if o == nil || o.Reader == nil || o.Writer == nil || o.Model == nil || o.Data == "" {
		return nil, errors.New("agent: Reader, Writer, Model and Data are required")
	}
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if p := o.Config.Pay; (p == nil) != (o.Payer == nil) || (p != nil && (o.Payer.Pay == nil || o.Payer.Signer == nil || o.Payer.Pay.MaxAmount != p.MaxPerCall ||
		o.Payer.Pay.Network != p.Network || !slices.Equal(o.Payer.Pay.Assets, p.Assets) || o.Payer.URL != p.Signer)) {
		return nil, errors.New("agent: Payer must be set exactly when Config.Pay is, with its signer, network, assets and max_per_call")
	}
	a := &Agent{o: *o, self: o.Writer.Address(), device: o.Writer.Device(), digest: o.Config.Digest(),
		mention: regexp.MustCompile(`(?i)(^|[^\w@])@` + regexp.QuoteMeta(o.Config.Name) + `\b`),
		convs:   map[string]*conv{}, cursors: map[string]int64{}}
	if a.o.Logger == nil {
		a.o.Logger = slog.New(slog.DiscardHandler)
	}
	if a.o.Now == nil {
		a.o.Now = time.Now
	}
	if a.o.TurnTimeout == 0 {
		a.o.TurnTimeout = 5 * time.Minute
	}
	if a.o.ApprovalWait == 0 {
		a.o.ApprovalWait = 2 * time.Minute
	}
	if a.o.QueueLen == 0 {
		a.o.QueueLen = 64
	}
	if a.o.RefreshEvery == 0 {
		a.o.RefreshEvery = time.Hour
	}
	if err := a.loadCursors(); err != nil {
		return nil, err
	}
	return a, nil
}

// Address is the agent's wallet address.
func (a *Agent) Address() wallet.Address { return a.self }

func (a *Agent) cursorPath() string { return filepath.Join(a.o.Data, "cursors.json") }

func (a *Agent) loadCursors() error {
	b, err := os.ReadFile(a.cursorPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent: reading cursors: %w", err)
	}
	if err := wire.Decode(b, &a.cursors); err != nil {
		return fmt.Errorf("agent: %s: %w", a.cursorPath(), err)
	}
	return nil
}

// handled records that seq of conversation id needs no answer after a
// restart.
func (a *Agent) handled(id string, seq int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cursors[id] >= seq {
		return
	}
	a.cursors[id] = seq
	b, err := wireMarshal(a.cursors)
	if err == nil {
		err = keyfile.WriteAtomic(a.cursorPath(), b, 0o600)
	}
	if err != nil {
		a.o.Logger.Error("saving cursors failed", "err", err)
	}
}

// Run watches the relay and answers until ctx ends. It replays the
// conversations' history from the start to rebuild, in memory only, the
// context and grants; messages at or before a conversation's saved cursor
// are not answered again. A lost connection is re-opened after a pause.
func (a *Agent) Run(ctx context.Context) error {
	if a.o.Refresh != nil {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.refresh(ctx)
		}()
	}
	var after int64
	backoff := time.Second
	for ctx.Err() == nil {
		err := a.o.Reader.Watch(ctx, after, func(m chat.Message) error {
			if m.Seq > after {
				after = m.Seq
			}
			a.dispatch(ctx, m)
			backoff = time.Second
			return nil
		})
		if ctx.Err() != nil {
			break
		}
		a.o.Logger.Warn("relay watch ended; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	a.mu.Lock()
	for _, c := range a.convs {
		close(c.queue)
	}
	a.mu.Unlock()
	a.wg.Wait()
	return nil
}

// dispatch hands m to its conversation's worker without waiting: one
// conversation's slow turn or failure never blocks another.
func (a *Agent) dispatch(ctx context.Context, m chat.Message) {
	if m.Conversation == "" || !envelope.ValidID(m.Conversation) {
		return
	}
	a.mu.Lock()
	c, ok := a.convs[m.Conversation]
	if !ok {
		c = &conv{id: m.Conversation, queue: make(chan chat.Message, a.o.QueueLen), replayUntil: a.cursors[m.Conversation]}
		a.convs[m.Conversation] = c
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.work(ctx, c)
		}()
	}
	a.mu.Unlock()
	select {
	case c.queue <- m:
	default:
		a.o.Logger.Warn("conversation queue full; message dropped", "conversation", m.Conversation, "id", m.ID)
	}
}

// refresh re-attests every RefreshEvery until ctx ends.
func (a *Agent) refresh(ctx context.Context) {
	t := time.NewTicker(a.o.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.sendMu.Lock()
		err := a.o.Refresh(ctx, a.o.Writer)
		a.sendMu.Unlock()
		if err != nil && ctx.Err() == nil {
			a.o.Logger.Error("refreshing the evidence failed", "err", err)
		} else if err == nil {
			a.o.Logger.Info("evidence refreshed")
		}
	}
}
