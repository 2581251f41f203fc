package ops

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Gateway is chatmcp-gateway's metric set. A nil *Gateway records nothing.
type Gateway struct {
	// HTTP counts requests per route.
	HTTP *HTTP
	// Audit measures the gateway's audit log.
	Audit *Audit

	calls   *prometheus.CounterVec
	results *prometheus.CounterVec
	wait    *prometheus.HistogramVec
	pending atomic.Pointer[func() int]
}

// NewGateway registers the gateway's metrics with reg:
//
//	chatmcp_gateway_tool_calls_total{tool,decision}      decision: granted, denied, audit_failed
//	chatmcp_gateway_tool_results_total{tool,outcome}     outcome: ok, error
//	chatmcp_gateway_approvals_pending                    calls held for a person now
//	chatmcp_gateway_approval_wait_seconds{outcome}       outcome: approved, denied, timed_out, cancelled
//
// plus the HTTP and audit families.
func NewGateway(reg prometheus.Registerer) *Gateway {
	g := &Gateway{
		HTTP:  NewHTTP(reg),
		Audit: NewAudit(reg),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatmcp_gateway_tool_calls_total",
			Help: "tools/call requests by catalogued tool (\"unknown\" otherwise) and decision.",
		}, []string{"tool", "decision"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatmcp_gateway_tool_results_total",
			Help: "Granted tools/call requests by tool and upstream outcome.",
		}, []string{"tool", "outcome"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chatmcp_gateway_approval_wait_seconds",
			Help:    "How long gated calls waited for a person, by outcome.",
			Buckets: []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"outcome"}),
	}
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chatmcp_gateway_approvals_pending",
		Help: "Tool calls currently held for approval.",
	}, func() float64 {
		if f := g.pending.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})
	reg.MustRegister(g.calls, g.results, g.wait, pending)
	return g
}

// HTTPMetrics returns the HTTP metric set, nil when g is.
func (g *Gateway) HTTPMetrics() *HTTP {
	if g == nil {
		return nil
	}
	return g.HTTP
}

// AuditMetrics returns the audit metric set, nil when g is.
func (g *Gateway) AuditMetrics() *Audit {
	if g == nil {
		return nil
	}
	return g.Audit
}

// ToolCall counts a tools/call decision. tool must be a name from the
// gateway's catalogue, or Unknown.
func (g *Gateway) ToolCall(tool, decision string) {
	if g != nil {
		g.calls.WithLabelValues(toolLabel(tool), oneOf(decision, Granted, Denied, AuditFailed)).Inc()
	}
}

// ToolResult counts the upstream outcome of a granted call.
func (g *Gateway) ToolResult(tool, outcome string) {
	if g != nil {
		g.results.WithLabelValues(toolLabel(tool), oneOf(outcome, OK, Error)).Inc()
	}
}

// ApprovalWaited records that a gated call waited d for outcome.
func (g *Gateway) ApprovalWaited(outcome string, d time.Duration) {
	if g != nil {
		g.wait.WithLabelValues(oneOf(outcome, Approved, Denied, TimedOut, Canceled)).Observe(d.Seconds())
	}
}

// SetApprovalsPending makes n the source of the pending-approvals gauge.
func (g *Gateway) SetApprovalsPending(n func() int) {
	if g != nil {
		g.pending.Store(&n)
	}
}
