package gateway

import (
	"context"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/gateway/authz"
)

// appendAudit appends e with ctx's values but not its cancellation, bounded
// by auditTimeout.
func (s *Server) appendAudit(ctx context.Context, e audit.Entry) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	return s.audit.Append(actx, e)
}

// Refusals that come before any authorization decision on a tool the caller
// may use — a missing or bad token at the HTTP edge, an unknown or
// unpermitted tool name, malformed arguments — are audited through a token
// bucket per reason, so that a flood cannot fill the disk: RefusalBurst
// entries at once, then RefusalRate per second (limits.go). Refusals beyond
// that are counted, and one "gateway.refusals.suppressed" entry carrying the
// count (and the reason) is appended when that reason's bucket next admits
// an entry, every RefusalFlushInterval, and when the gateway closes.

type refusalBucket struct {
	tokens     float64
	last       time.Time
	suppressed int
	typ        string
	since      time.Time // first suppressed refusal
}

// refusalLimiter holds one bucket per reason. Reasons are the gateway's
// own fixed strings, never client input, so the map stays small.
type refusalLimiter struct {
	mu      sync.Mutex
	buckets map[string]*refusalBucket
}

// admit reports whether a refusal for reason gets its own entry at now; if
// it does, it also returns the summary of refusals suppressed before it
// (Count 0 when none).
func (l *refusalLimiter) admit(typ, reason string, now time.Time) (bool, audit.Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*refusalBucket{}
	}
	b := l.buckets[reason]
	if b == nil {
		b = &refusalBucket{tokens: RefusalBurst, last: now}
		l.buckets[reason] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(RefusalBurst, b.tokens+el*RefusalRate)
	}
	b.last = now
	if b.tokens < 1 {
		if b.suppressed == 0 {
			b.since = now
		}
		b.suppressed++
		b.typ = typ
		return false, audit.Entry{}
	}
	b.tokens--
	return true, b.take(reason)
}

// take returns and clears b's summary entry.
func (b *refusalBucket) take(reason string) audit.Entry {
	if b.suppressed == 0 {
		return audit.Entry{}
	}
	e := audit.Entry{Type: "gateway.refusals.suppressed", Action: b.typ, Decision: "denied", Reason: reason,
		Count: b.suppressed, Request: "since " + b.since.UTC().Format(time.RFC3339)}
	b.suppressed = 0
	return e
}

// drain returns the pending summaries, by reason.
func (l *refusalLimiter) drain() []audit.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []audit.Entry
	for r, b := range l.buckets {
		if e := b.take(r); e.Count > 0 {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Reason < out[j].Reason })
	return out
}

// auditRefusal appends e (a denial with a rate-limited reason) unless its
// bucket is empty, preceded by the summary of refusals suppressed since the
// last entry for that reason. The request is refused either way.
func (s *Server) auditRefusal(ctx context.Context, e audit.Entry) {
	ok, sum := s.refusals.admit(e.Type, e.Reason, s.now())
	if !ok {
		return
	}
	if sum.Count > 0 {
		if err := s.appendAudit(ctx, sum); err != nil {
			s.log.Error("audit append failed", "err", err)
		}
	}
	if err := s.appendAudit(ctx, e); err != nil {
		s.log.Error("audit append failed", "err", err)
	}
}

// flushRefusals appends the summaries of suppressed refusals every
// RefusalFlushInterval and once more when the gateway stops.
func (s *Server) flushRefusals() {
	defer s.wg.Done()
	t := time.NewTicker(RefusalFlushInterval)
	defer t.Stop()
	flush := func() {
		for _, e := range s.refusals.drain() {
			if err := s.appendAudit(s.ctx, e); err != nil {
				s.log.Error("audit append failed", "err", err)
			}
		}
	}
	for {
		select {
		case <-s.ctx.Done():
			flush()
			return
		case <-t.C:
			flush()
		}
	}
}

// rateLimitedReason reports whether a tools/call denial with reason is one
// of the pre-authorization refusals that go through the limiter.
func rateLimitedReason(reason string) bool {
	switch reason {
	case reasonUnknownTool, reasonNotPermitted, reasonDisabled, reasonMalformedArgs:
		return true
	}
	return false
}

// Audit reasons of tools/call refusals before authorization.
const (
	reasonUnknownTool   = "unknown tool"
	reasonNotPermitted  = "not permitted by token"
	reasonDisabled      = "tool disabled: definition changed"
	reasonMalformedArgs = "malformed arguments"
)

// unavailable is the one answer to a call of a tool the caller's token does
// not allow and of a tool that does not exist: the same code and text, so
// that a token holder cannot map the tools it may not use. The audit entry
// keeps the difference.
func unavailable(name string) error {
	return refusal("unknown tool %q (or not permitted by your token)", name)
}

// refuseCallName refuses a tools/call by name before any handler runs: a
// name the token does not allow or the gateway does not expose gets
// unavailable; a permitted tool disabled by a pin change says so (lookup,
// call_resolve.go). It returns nil when the call may proceed to callTool.
func (s *Server) refuseCallName(ctx context.Context, p *authz.Principal, cp *mcp.CallToolParamsRaw) error {
	t, r := s.lookup(p, cp.Name)
	if r == nil {
		return nil
	}
	_, argsHash, _ := decodeArgs(cp.Arguments)
	c := &toolCall{req: &mcp.CallToolRequest{Params: cp}, start: s.now(), principal: p, argsHash: argsHash, tool: t}
	s.auditRefused(ctx, c, r.reason)
	return r.err
}

// auditTokenRefusal records a request refused at the HTTP edge for its
// token (msg names the failed check), rate-limited per reason.
func (s *Server) auditTokenRefusal(r *http.Request, msg string) {
	actor := r.RemoteAddr
	if host, _, err := net.SplitHostPort(actor); err == nil {
		actor = host
	}
	s.auditRefusal(r.Context(), audit.Entry{Type: "gateway.request", Actor: actor, Action: r.Method + " " + clip(r.URL.Path),
		Decision: "denied", Reason: msg})
}

func clip(s string) string {
	if len(s) > maxAuditName {
		return s[:maxAuditName] + "…"
	}
	return s
}

// auditSessionOwner records a request whose Mcp-Session-Id names a session
// another principal opened (another token, or a token attenuated from the
// caller's or from which the caller's was attenuated), rate-limited. The
// refusal itself comes after: 403 from the MCP handler (the SDK compares
// TokenInfo.UserID) or from POST /v1/credentials.
func (s *Server) auditSessionOwner(r *http.Request, p *authz.Principal) {
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		return
	}
	owner, ok := s.sessionToken(sid)
	if !ok || owner == p.ChainID {
		return
	}
	s.auditRefusal(r.Context(), audit.Entry{Type: "gateway.request", Actor: "token:" + p.TokenID, TokenChain: p.ChainID,
		Principal: p.Name(), Action: r.Method + " " + clip(r.URL.Path), Decision: "denied", Reason: reasonSessionOwner})
}

// reasonSessionOwner is the audit reason of a request for another
// principal's session.
const reasonSessionOwner = "session belongs to another token"
