package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/gateway/approval"
	"github.com/chatmcp/chatmcp/internal/ops"
)

// Audit entry types the metrics read (call_audit.go, refusal.go).
const (
	auditCall       = "gateway.call"
	auditCallResult = "gateway.call.result"
	// auditCallPayment is written before a paid call's payment is settled
	// (call_pay.go).
	auditCallPayment = "gateway.call.payment"
	auditSuppressed  = "gateway.refusals.suppressed"
)

// instrument connects Options.Metrics: tools/call decisions and approval
// waits are counted where every one of them is made durable, at the audit
// log, so the call path needs no hooks of its own. It runs once in New,
// after the audit log and the approval broker exist.
func (s *Server) instrument() {
	m := s.opts.Metrics
	if m == nil {
		return
	}
	s.audit = &meteredAudit{AuditLog: s.audit, s: s, m: m}
	m.SetApprovalsPending(func() int { return len(s.approvals.List()) })
}

// meteredAudit counts the entries passing to the audit log.
type meteredAudit struct {
	AuditLog
	s *Server
	m *ops.Gateway
}

func (a *meteredAudit) Append(ctx context.Context, e audit.Entry) error {
	start := time.Now()
	err := a.AuditLog.Append(ctx, e)
	a.m.AuditMetrics().Appended(time.Since(start))
	switch e.Type {
	case auditCall:
		tool := a.s.toolLabel(e.Tool)
		d := e.Decision
		if err != nil {
			// Refused at its decision entry: nothing reached the upstream.
			d = ops.AuditFailed
		}
		a.m.ToolCall(tool, d)
		if e.Request != "" {
			// An approval id: the call was held for a person, and its
			// decision entry's duration is (to the authorization checks'
			// microseconds) the wait.
			a.m.ApprovalWaited(approvalOutcome(e.Reason), time.Duration(e.DurationMS*float64(time.Millisecond)))
		}
	case auditCallResult:
		a.m.ToolResult(a.s.toolLabel(e.Tool), e.Decision)
	case auditSuppressed:
		// Refusals past the audit rate limit are counted when their
		// summary is written; their tool names are not known.
		if e.Action == auditCall {
			for range e.Count {
				a.m.ToolCall(ops.Unknown, ops.Denied)
			}
		}
	}
	return err
}

// toolLabel is name if the catalogue has it, else ops.Unknown: a client
// chooses the names it calls, so only catalogued ones become labels.
func (s *Server) toolLabel(name string) string {
	if known, _ := s.toolState(name); known {
		return name
	}
	return ops.Unknown
}

// approvalOutcome reads the outcome from an approval-gated entry's reason
// ("approval approved by admin", "approval timed out", …).
func approvalOutcome(reason string) string {
	r, _ := strings.CutPrefix(reason, "approval ")
	for _, o := range []struct {
		outcome approval.Outcome
		label   string
	}{
		{approval.Approved, ops.Approved},
		{approval.Denied, ops.Denied},
		{approval.TimedOut, ops.TimedOut},
		{approval.Cancelled, ops.Canceled},
	} {
		if strings.HasPrefix(r, string(o.outcome)) {
			return o.label
		}
	}
	return ops.Other
}

// ReadyChecks are the gateway's readiness checks for the ops server's
// /readyz: "store" (the database answers), "kbs_secrets" (every layer-1
// secret the config names was fetched) and "upstreams" (every configured
// upstream is connected). Until New returns, the daemon declares them
// failing.
func (s *Server) ReadyChecks() []ops.Check {
	return []ops.Check{
		{Name: "store", Func: func(ctx context.Context) error { return s.db.PingContext(ctx) }},
		{Name: "kbs_secrets", Func: func(context.Context) error {
			for _, n := range s.cfg.SecretNames() {
				if _, ok := s.secrets[n]; !ok {
					return fmt.Errorf("secret %q not fetched", n)
				}
			}
			return nil
		}},
		{Name: "upstreams", Func: func(context.Context) error {
			if s.ctx.Err() != nil {
				return errors.New("gateway closed")
			}
			s.mu.RLock()
			defer s.mu.RUnlock()
			for _, n := range s.cfg.UpstreamNames() {
				if s.upstreams[n] == nil {
					return fmt.Errorf("upstream %q not connected", n)
				}
			}
			return nil
		}},
	}
}

// ReadinessChecks are the names of ReadyChecks, for declaring them before
// New.
func ReadinessChecks() []string { return []string{"store", "kbs_secrets", "upstreams"} }
