package relay

import (
	"context"

	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/store"
)

// ReadinessChecks are the names of the relay's readiness checks, for
// declaring them before it starts: the store answering (StoreCheck) and,
// with PostgreSQL, the replica fan-out listening ("fanout", after
// Server.Run signals ready). Package relay/daemon runs the process.
func ReadinessChecks() []string { return []string{"store", "fanout"} }

// StoreCheck is the "store" readiness check: db answers a ping.
func StoreCheck(db *store.DB) ops.Check {
	return ops.Check{Name: "store", Func: func(ctx context.Context) error { return db.PingContext(ctx) }}
}
