// Package approval holds tool calls that need a person's decision: each held
// call gets an id, is listed until it is approved, denied or times out, and
// its caller waits for the outcome. The caller's own session never approves
// its call, unless the request was held with CallerMayApprove. It knows
// nothing of MCP or HTTP.
package approval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"sync"
	"time"
)

// Outcome is how a request ended.
type Outcome string

const (
	Approved Outcome = "approved"
	Denied   Outcome = "denied"
	TimedOut Outcome = "timed out"
	// Cancelled: the caller went away (its context ended) before a decision.
	Cancelled Outcome = "cancelled"
)

// ErrUnknown is returned by Decide for an id that is not pending (never
// existed, already decided, timed out or cancelled).
var ErrUnknown = errors.New("no pending approval with this id")

// ErrSelfApproval is returned by DecideInSession when the session that made
// a call tries to approve it: an agent (or whoever holds its token) would
// otherwise be the person it is gated on. The request stays pending.
var ErrSelfApproval = errors.New("the calling session cannot approve its own call")

// Request describes a held call. Arguments must already be redacted.
type Request struct {
	ID              string         `json:"id"`
	Principal       string         `json:"principal"`
	TokenID         string         `json:"-"`
	Tool            string         `json:"tool"`
	ArgumentsSHA256 string         `json:"arguments_sha256"`
	Arguments       map[string]any `json:"arguments"`
	Created         time.Time      `json:"created"`
	Expires         time.Time      `json:"expires"`
	// Session is the caller's MCP session id; a decision from that session
	// cannot approve the request (DecideInSession).
	Session string `json:"-"`
	// CallerMayApprove lets the caller's own session approve (an operator's
	// opt-in, caller_elicitation_approves). If false, only out-of-band
	// deciders (Decide) can approve.
	CallerMayApprove bool `json:"-"`
	// Approver is the principal the caller's token names as the approver
	// of its held calls (an agent's grant names its inviter's wallet):
	// besides the admin, only a statement signed for that principal decides
	// (DecideIf). "" when the token names none.
	Approver string `json:"approver,omitempty"`
	// Holder is the principal the caller's token is delegated to; it never
	// approves its own calls. "" when the token names none.
	Holder string `json:"-"`
	// Grant is the caller's token chain id (the grant the call is made
	// under), for the audit of who approved under which grant.
	Grant string `json:"-"`
}

// Decision is a recorded decision.
type Decision struct {
	Outcome Outcome
	// By says who decided: "admin", "caller elicitation", or "" for
	// timeouts and cancellations.
	By string
}

type pending struct {
	req  Request
	done chan Decision // buffered 1; receives exactly one decision
}

// Options configure a Broker.
type Options struct {
	// Timeout is how long a request waits. If zero, 2 minutes.
	Timeout time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// After returns a channel that fires after d. If nil, time.After; tests
	// inject their own to control time.
	After func(d time.Duration) <-chan time.Time
}

// Broker tracks pending requests. It is safe for concurrent use.
type Broker struct {
	timeout time.Duration
	now     func() time.Time
	after   func(time.Duration) <-chan time.Time

	mu      sync.Mutex
	pending map[string]*pending
}

// New returns a Broker.
func New(opts *Options) *Broker {
	if opts == nil {
		opts = &Options{}
	}
	b := &Broker{timeout: opts.Timeout, now: opts.Now, after: opts.After, pending: map[string]*pending{}}
	if b.timeout <= 0 {
		b.timeout = 2 * time.Minute
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.after == nil {
		b.after = time.After
	}
	return b
}

// Hold registers req (ID, Created and Expires are filled in) and returns
// it with a wait function that blocks until a decision, the timeout or the
// end of ctx. The request is listed from the moment Hold returns.
func (b *Broker) Hold(req Request) (Request, func(ctx context.Context) Decision) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic("approval: crypto/rand failed: " + err.Error())
	}
	req.ID = hex.EncodeToString(id[:])
	req.Created = b.now().UTC()
	req.Expires = req.Created.Add(b.timeout)
	p := &pending{req: req, done: make(chan Decision, 1)}
	b.mu.Lock()
	b.pending[req.ID] = p
	b.mu.Unlock()
	timer := b.after(b.timeout)
	wait := func(ctx context.Context) Decision {
		var d Decision
		select {
		case d = <-p.done:
			return d
		case <-timer:
			d = Decision{Outcome: TimedOut}
		case <-ctx.Done():
			d = Decision{Outcome: Cancelled}
		}
		// Remove it, unless a decision raced in: then that decision wins.
		b.mu.Lock()
		_, still := b.pending[req.ID]
		delete(b.pending, req.ID)
		b.mu.Unlock()
		if !still {
			return <-p.done
		}
		return d
	}
	return req, wait
}

// Decide records a decision from an authenticated channel other than the
// caller's session (the admin API). Only Approved and Denied are accepted.
// An id that is not pending gives ErrUnknown.
func (b *Broker) Decide(id string, outcome Outcome, by string) error {
	return b.decide(id, outcome, by, "")
}

// DecideInSession records a decision made in the MCP session session (by
// elicitation). The caller's own session may deny its call but not approve
// it, unless the request was held with CallerMayApprove: that gives
// ErrSelfApproval and leaves the request pending for an out-of-band
// decision.
func (b *Broker) DecideInSession(id string, outcome Outcome, by, session string) error {
	if session == "" {
		return errors.New("approval: a decision in a session needs the session id")
	}
	return b.decide(id, outcome, by, session)
}

// DecideIf records a decision when check accepts the pending request (it
// runs under the broker's lock, so the request cannot be decided by anyone
// else between the check and the decision). An error from check is
// returned and leaves the request pending; an id that is not pending gives
// ErrUnknown.
func (b *Broker) DecideIf(id string, outcome Outcome, by string, check func(Request) error) error {
	if check == nil {
		return errors.New("approval: DecideIf needs a check")
	}
	return b.decideIf(id, outcome, by, "", check)
}

func (b *Broker) decide(id string, outcome Outcome, by, session string) error {
	return b.decideIf(id, outcome, by, session, nil)
}

func (b *Broker) decideIf(id string, outcome Outcome, by, session string, check func(Request) error) error {
	if outcome != Approved && outcome != Denied {
		return errors.New("approval: decision must be approved or denied")
	}
	b.mu.Lock()
	p, ok := b.pending[id]
	if ok && outcome == Approved && session != "" && session == p.req.Session && !p.req.CallerMayApprove {
		b.mu.Unlock()
		return ErrSelfApproval
	}
	if ok && check != nil {
		if err := check(p.req); err != nil {
			b.mu.Unlock()
			return err
		}
	}
	delete(b.pending, id)
	b.mu.Unlock()
	if !ok {
		return ErrUnknown
	}
	p.done <- Decision{Outcome: outcome, By: by}
	return nil
}

// List returns the pending requests, oldest first.
func (b *Broker) List() []Request {
	b.mu.Lock()
	out := make([]Request, 0, len(b.pending))
	for _, p := range b.pending {
		out = append(out, p.req)
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
