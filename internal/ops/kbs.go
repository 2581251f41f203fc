package ops

import "github.com/prometheus/client_golang/prometheus"

// KBS is chatmcp-kbs's metric set. A nil *KBS records nothing.
type KBS struct {
	// HTTP counts requests per route.
	HTTP *HTTP
	// Audit measures the KBS's audit log.
	Audit *Audit

	releases *prometheus.CounterVec
}

// NewKBS registers the key broker's metrics with reg:
//
//	chatmcp_kbs_releases_total{decision}   decision: granted, denied, audit_failed
//
// plus the HTTP and audit families. No label names a secret.
func NewKBS(reg prometheus.Registerer) *KBS {
	k := &KBS{
		HTTP:  NewHTTP(reg),
		Audit: NewAudit(reg),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatmcp_kbs_releases_total",
			Help: "Secret release decisions.",
		}, []string{"decision"}),
	}
	reg.MustRegister(k.releases)
	return k
}

// HTTPMetrics returns the HTTP metric set, nil when k is.
func (k *KBS) HTTPMetrics() *HTTP {
	if k == nil {
		return nil
	}
	return k.HTTP
}

// AuditMetrics returns the audit metric set, nil when k is.
func (k *KBS) AuditMetrics() *Audit {
	if k == nil {
		return nil
	}
	return k.Audit
}

// Release counts one release decision.
func (k *KBS) Release(decision string) {
	if k != nil {
		k.releases.WithLabelValues(oneOf(decision, Granted, Denied, AuditFailed)).Inc()
	}
}
