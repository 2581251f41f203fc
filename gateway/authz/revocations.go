package authz

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/store"
)

var migrations = []store.Migration{
	{SQLite: `CREATE TABLE gateway_revocations (id TEXT PRIMARY KEY, revoked_at TEXT NOT NULL)`},
}

// Revocations is the persisted set of revoked token ids, loaded into memory
// at open so that checking one costs a map lookup. It implements
// captoken.Revocations. Revoke writes to the database before it updates the
// set, so a revocation that returned survives a restart.
type Revocations struct {
	db  *store.DB
	now func() time.Time

	mu  sync.RWMutex
	ids map[string]bool
}

// OpenRevocations migrates db and loads its revocations. now is the clock;
// if nil, time.Now.
func OpenRevocations(ctx context.Context, db *store.DB, now func() time.Time) (*Revocations, error) {
	if now == nil {
		now = time.Now
	}
	if err := db.Migrate(ctx, "gateway", migrations); err != nil {
		return nil, fmt.Errorf("migrating gateway tables: %w", err)
	}
	rows, err := db.Query(ctx, `SELECT id FROM gateway_revocations`)
	if err != nil {
		return nil, fmt.Errorf("loading revocations: %w", err)
	}
	defer rows.Close()
	r := &Revocations{db: db, now: now, ids: map[string]bool{}}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("loading revocations: %w", err)
		}
		r.ids[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("loading revocations: %w", err)
	}
	return r, nil
}

// IsRevoked reports whether id is revoked.
func (r *Revocations) IsRevoked(_ context.Context, id string) (bool, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ids[id], nil
}

// Revoke records id as revoked. Revoking twice is not an error.
func (r *Revocations) Revoke(ctx context.Context, id string) error {
	if !validID(id) {
		return ErrBadID
	}
	_, err := r.db.Exec(ctx, `INSERT INTO gateway_revocations (id, revoked_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`,
		id, r.now().UTC().Format(time.RFC3339))
	if err != nil {
		return fmt.Errorf("revoking %s: %w", id, err)
	}
	r.mu.Lock()
	r.ids[id] = true
	r.mu.Unlock()
	return nil
}
