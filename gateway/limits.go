package gateway

import (
	"time"

	"github.com/chatmcp/chatmcp/captoken"
)

// Every cap of the gateway, in one place (tailscale's tka/limits.go). Where
// a value ends up in a capability token the cap is captoken's own, so that
// the gateway never accepts a request it then fails to mint.

// Caps on what the gateway's HTTP API accepts.
const (
	// MaxAdminBody caps an admin request body.
	MaxAdminBody = 16 << 10
	// MaxTokenTTL caps the lifetime of a minted token.
	MaxTokenTTL = 30 * 24 * time.Hour
	// DefaultTokenTTL applies when a mint request names no ttl.
	DefaultTokenTTL = time.Hour
	// MaxMintPatterns caps the tool patterns of a mint request: the
	// patterns of one token block.
	MaxMintPatterns = captoken.MaxPatterns
	// MaxPatternLen caps one tool pattern, in bytes.
	MaxPatternLen = captoken.MaxStringLen
	// MaxSubjectLen caps a token's subject, in bytes.
	MaxSubjectLen = captoken.MaxStringLen
)

// SessionIdleTimeout ends an MCP session (2025 protocol revisions) that has
// seen no request for this long; its layer-2 credentials and per-session
// upstream connections go with it.
const SessionIdleTimeout = 30 * time.Minute

// MaxConfigSize caps a configuration file.
const MaxConfigSize = 1 << 20

// Caps of a tools/call (the call path, pipeline.go).
const (
	// MaxApprovalTimeout bounds approval_timeout: how long a call may be
	// held for a person.
	MaxApprovalTimeout = 24 * time.Hour
	// MaxCallTimeout bounds an upstream's call_timeout.
	MaxCallTimeout = 24 * time.Hour
	// ShutdownTimeout bounds Serve's return after its context ends: calls
	// still running then are cancelled (their upstreams get
	// notifications/cancelled) and their streams closed.
	ShutdownTimeout = 5 * time.Second
	// shutdownGrace is the part of ShutdownTimeout left for the HTTP
	// requests still open once the MCP sessions are closed.
	shutdownGrace = time.Second
	// flushTimeout bounds how long a forwarded request waits, after its
	// result arrived, for what the upstream sent before it (progress, logs)
	// to reach the caller (upstream.Conn.Flush).
	flushTimeout = 2 * time.Second
	// DefaultApprovalProgressInterval is how often a held call sends its
	// caller a progress notification, when the caller sent a progress token
	// (Options.ApprovalProgressInterval).
	DefaultApprovalProgressInterval = 10 * time.Second
	// auditTimeout bounds one audit append. Appends never use the caller's
	// cancellation: a call abandoned while it waits for a person still
	// leaves its entry.
	auditTimeout = 10 * time.Second
	// maxAuditName caps client-chosen names (tool names of refused calls)
	// in audit entries, in bytes.
	maxAuditName = 256
	// maxFastBody caps the body the fast path reads (fastpath.go); a
	// larger one goes to the SDK's handler.
	maxFastBody = 1 << 20
	// maxUpstreamAnswer caps one message of an upstream's answer to a call
	// the gateway posts itself (call_forward_post.go).
	maxUpstreamAnswer = 8 << 20
)

// The audit rate limit of refusals before authorization (refusal.go): a
// token bucket per reason.
const (
	// RefusalBurst is how many refusals of one reason are audited at once.
	RefusalBurst = 20
	// RefusalRate is how many per second are audited after the burst.
	RefusalRate = 1.0
	// RefusalFlushInterval is how often the counts of suppressed refusals
	// are written.
	RefusalFlushInterval = time.Minute
)
