package ops

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Audit records audit log performance: chatmcp_audit_append_duration_seconds
// and chatmcp_audit_commit_entries (entries per group commit, one write and
// fsync). It implements audit.Observer. A nil *Audit records nothing.
type Audit struct {
	append prometheus.Histogram
	commit prometheus.Histogram
}

// NewAudit registers the audit metrics with reg.
func NewAudit(reg prometheus.Registerer) *Audit {
	a := &Audit{
		append: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chatmcp_audit_append_duration_seconds",
			Help:    "Time an audit append takes, until its entry is on disk.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chatmcp_audit_commit_entries",
			Help:    "Entries written per audit group commit (one write, one fsync).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
	}
	reg.MustRegister(a.append, a.commit)
	return a
}

// Appended records one append that took d.
func (a *Audit) Appended(d time.Duration) {
	if a != nil {
		a.append.Observe(d.Seconds())
	}
}

// Committed records one group commit of n entries.
func (a *Audit) Committed(n int) {
	if a != nil {
		a.commit.Observe(float64(n))
	}
}
