package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/gateway/authz"
	"github.com/chatmcp/chatmcp/store"
)

// Bounds of the revocations configuration.
const (
	// MinRevocationReconcile keeps the reconcile from hammering the database.
	MinRevocationReconcile = 100 * time.Millisecond
	// MaxRevocationStaleness caps how long a replica may trust a list it
	// could not re-read.
	MaxRevocationStaleness = 10 * time.Minute
)

// RevocationConfig says how a gateway replica follows the token
// revocations of the others sharing its database (docs/gateway.md,
// "Replicas").
type RevocationConfig struct {
	// Reconcile is how often the whole revocation table is re-read. If
	// zero, authz.DefaultReconcile (2s).
	Reconcile Duration `yaml:"reconcile"`
	// MaxStaleness is how long the gateway keeps accepting tokens after the
	// last successful read of the table; past it every token is refused
	// until the database answers again. If zero, five reconcile intervals.
	MaxStaleness Duration `yaml:"max_staleness"`
	// Listen follows other replicas' revocations at once through PostgreSQL
	// LISTEN/NOTIFY. If nil, true; false leaves only the reconcile (for a
	// pooler that cannot carry LISTEN).
	Listen *bool `yaml:"listen"`
}

// validateStorage checks database and revocations and fills defaults.
func (c *Config) validateStorage() error {
	if c.Database != "" && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		return fmt.Errorf("database: must be a postgres:// DSN (leave it out for SQLite in the data directory)")
	}
	rc := &c.Revocations
	if rc.Reconcile == 0 {
		rc.Reconcile = Duration(authz.DefaultReconcile)
	}
	if t := time.Duration(rc.Reconcile); t < MinRevocationReconcile {
		return fmt.Errorf("revocations.reconcile: %s is below %s", t, MinRevocationReconcile)
	}
	if rc.MaxStaleness == 0 {
		rc.MaxStaleness = 5 * rc.Reconcile
	}
	if t := time.Duration(rc.MaxStaleness); t <= time.Duration(rc.Reconcile) || t > MaxRevocationStaleness {
		return fmt.Errorf("revocations.max_staleness: %s not in (reconcile %s, %s]", t, time.Duration(rc.Reconcile), MaxRevocationStaleness)
	}
	return nil
}

// openStorage opens the gateway's database (PostgreSQL when configured,
// else SQLite DATA/gateway.db) and its revocations.
func openStorage(ctx context.Context, cfg *Config, now func() time.Time, log *slog.Logger) (*store.DB, *authz.Revocations, error) {
	dsn := cfg.Database
	if dsn == "" {
		dsn = filepath.Join(cfg.Data, "gateway.db")
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	rc := cfg.Revocations
	revs, err := authz.OpenRevocations(ctx, db, &authz.RevocationOptions{
		Now:          now,
		Reconcile:    time.Duration(rc.Reconcile),
		MaxStaleness: time.Duration(rc.MaxStaleness),
		NoListen:     rc.Listen != nil && !*rc.Listen,
		Logger:       log,
	})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, revs, nil
}
