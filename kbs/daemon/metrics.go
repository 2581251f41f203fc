package daemon

import (
	"context"
	"time"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/kbs"
)

// meteredAuditor counts release decisions and times appends where every
// decision is made durable: at the audit log. An entry the log refused
// counts as audit_failed (the KBS then released nothing).
type meteredAuditor struct {
	kbs.Auditor
	m *ops.KBS
}

// metered returns a, counting into m; a itself if m is nil.
func metered(a kbs.Auditor, m *ops.KBS) kbs.Auditor {
	if m == nil {
		return a
	}
	return meteredAuditor{a, m}
}

func (a meteredAuditor) Append(ctx context.Context, e audit.Entry) error {
	start := time.Now()
	err := a.Auditor.Append(ctx, e)
	a.m.AuditMetrics().Appended(time.Since(start))
	if e.Type == auditRelease {
		d := e.Decision
		if err != nil {
			d = ops.AuditFailed
		}
		a.m.Release(d)
	}
	return err
}

// auditRelease is the entry type of a release decision (kbs/server.go).
const auditRelease = "kbs.release"
