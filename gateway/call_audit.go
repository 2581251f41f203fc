package gateway

import (
	"context"
	"encoding/json"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/audit"
)

// Every tools/call with a principal leaves a gateway.call entry: its
// refusal (auditRefused) or the decision to forward it (auditDecision),
// written before the upstream sees anything. A forwarded call also leaves
// a gateway.call.result entry (auditOutcome). No append depends on the
// caller's context (appendAudit, refusal.go).

// entry is the audit entry of c so far, of type typ.
func (s *Server) entry(c *toolCall, typ string) audit.Entry {
	p := c.principal
	e := audit.Entry{Type: typ, Actor: "token:" + p.TokenID, TokenChain: p.ChainID, Principal: p.Name(),
		Tool: c.req.Params.Name, Action: "tools/call", ArgsSHA256: c.argsHash, Arguments: c.auditArgs,
		Request: c.approvalID, DurationMS: ms(s.now().Sub(c.start))}
	if c.payment != nil {
		e.Payment = c.payment.Transaction
	}
	if c.tool != nil {
		e.Upstream = c.tool.upstream.cfg.Name
	}
	return e
}

// auditRefused records a refused call. Refusals before any decision on a
// tool the caller may use go through the rate limiter (auditRefusal), with
// the client-chosen tool name clipped; the others are always written. A
// caller that went away (approval cancelled) has a cancelled ctx; its entry
// is written all the same.
func (s *Server) auditRefused(ctx context.Context, c *toolCall, reason string) {
	e := s.entry(c, auditCall)
	e.Decision, e.Reason = "denied", reason
	if rateLimitedReason(reason) {
		e.Tool = clip(e.Tool)
		s.auditRefusal(ctx, e)
		return
	}
	if err := s.appendAudit(ctx, e); err != nil {
		s.log.Error("audit append failed", "err", err)
	}
}

// auditDecision records that c is granted, and how it was approved. If the
// entry cannot be written, the call is refused: no entry, no call. With a
// log that can stage (StagedLog, *audit.Log) the entry is written before
// forwarding and its fsync overlaps the upstream round trip: durable waits
// for it, and callTool releases no result before durable returned nil
// (docs/gateway.md, "Audit", for what a crash can lose).
func (s *Server) auditDecision(ctx context.Context, c *toolCall) (durable func() error, err error) {
	e := s.entry(c, auditCall)
	e.Decision, e.Reason = "granted", "approval "+c.approval
	if sl, ok := s.audit.(StagedLog); ok {
		durable, err = sl.Stage(context.WithoutCancel(ctx), e)
	} else {
		err = s.appendAudit(ctx, e)
		durable = func() error { return nil }
	}
	if err != nil {
		s.log.Error("audit append failed: refusing call", "err", err)
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "chatmcp-gateway: audit log unavailable; call refused"}
	}
	return durable, nil
}

// StagedLog is an AuditLog that can write an entry before it is durable
// (*audit.Log implements it): Stage returns once the entry is written,
// durable once it is fsynced.
type StagedLog interface {
	Stage(ctx context.Context, e audit.Entry) (durable func() error, err error)
}

// errWithheld answers a call whose upstream answered but whose decision
// entry did not become durable: the result is not released.
var errWithheld = &jsonrpc.Error{Code: jsonrpc.CodeInternalError,
	Message: "chatmcp-gateway: audit log unavailable; the call's result is withheld"}

// auditOutcome records how a forwarded call ended, off the response path:
// the decision entry already made the call auditable before the upstream
// saw it, and a failed write here breaks the log (audit.ErrBroken), which
// refuses every later call at its decision entry.
func (s *Server) auditOutcome(ctx context.Context, c *toolCall, res *mcp.CallToolResult, callErr error) {
	e := s.entry(c, auditCallResult)
	switch {
	case callErr != nil:
		e.Decision, e.Reason = "error", "upstream error"
	case res.IsError:
		e.Decision, e.Reason = "error", "tool error"
	case res.InputRequests != nil:
		e.Decision, e.Reason = "input_required", "the upstream asked the caller for input (an input round)"
	default:
		e.Decision, e.Reason = "ok", ""
	}
	if dl, ok := s.audit.(DeferredLog); ok {
		// Written with the next decision entry (one write, checkpoint
		// and fsync for both), or on its own shortly after.
		if err := dl.Defer(e); err != nil {
			s.log.Error("audit append of a call result failed", "err", err)
		}
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.appendAudit(ctx, e); err != nil {
			s.log.Error("audit append of a call result failed", "err", err)
		}
	}()
}

// DeferredLog is an AuditLog that can queue an entry to be written with
// the next one (*audit.Log implements it).
type DeferredLog interface {
	Defer(e audit.Entry) error
}

// auditArguments returns c's arguments for its audit entries, redacted of
// layer-1 secrets and the session's layer-2 credentials (audit_arguments:
// true).
func (s *Server) auditArguments(c *toolCall) json.RawMessage {
	canon, err := json.Marshal(c.args)
	if err != nil {
		return nil
	}
	red := s.redactorFor(c).String(string(canon))
	if !json.Valid([]byte(red)) {
		// Redaction cut through JSON syntax: keep it as one string.
		b, _ := json.Marshal(red)
		return b
	}
	return json.RawMessage(red)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
