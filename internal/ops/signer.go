package ops

import "github.com/prometheus/client_golang/prometheus"

// Signer is chatmcp-signer's metric set. A nil *Signer records nothing.
type Signer struct {
	// HTTP counts requests per route.
	HTTP *HTTP
	// Audit measures the signer's audit log.
	Audit *Audit

	decisions *prometheus.CounterVec
	reasons   []string
}

// Held is the decision of a request that waits for a person.
const Held = "held"

// NewSigner registers the signer's metrics with reg:
//
//	chatmcp_signer_decisions_total{decision, reason}
//
// decision: granted, denied, held, error; reason: one of reasons (the
// signer's policy rule codes, which the caller passes so that this
// package knows no domain package), "" for a grant, else other. No label
// names a key, a token, an amount or an address.
func NewSigner(reg prometheus.Registerer, reasons []string) *Signer {
	s := &Signer{
		HTTP:    NewHTTP(reg),
		Audit:   NewAudit(reg),
		reasons: append([]string{""}, reasons...),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatmcp_signer_decisions_total",
			Help: "Signing decisions, by the policy rule that refused.",
		}, []string{"decision", "reason"}),
	}
	reg.MustRegister(s.decisions)
	return s
}

// HTTPMetrics returns the HTTP metric set, nil when s is.
func (s *Signer) HTTPMetrics() *HTTP {
	if s == nil {
		return nil
	}
	return s.HTTP
}

// AuditMetrics returns the audit metric set, nil when s is.
func (s *Signer) AuditMetrics() *Audit {
	if s == nil {
		return nil
	}
	return s.Audit
}

// Decision counts one decision.
func (s *Signer) Decision(decision, reason string) {
	if s != nil {
		s.decisions.WithLabelValues(oneOf(decision, Granted, Denied, Held, Error), oneOf(reason, s.reasons...)).Inc()
	}
}
