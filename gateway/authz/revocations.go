package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/store"
)

var migrations = []store.Migration{
	{SQLite: `CREATE TABLE gateway_revocations (id TEXT PRIMARY KEY, revoked_at TEXT NOT NULL)`},
}

// RevocationsChannel is the PostgreSQL NOTIFY channel on which a replica
// announces a token id it revoked.
const RevocationsChannel = "chatmcp_gateway_revocations"

// Defaults of RevocationOptions.
const (
	DefaultReconcile    = 2 * time.Second
	DefaultMaxStaleness = 10 * time.Second
)

// ErrRevocationsStale is returned by IsRevoked when the revocation set has
// not been re-read from the database for longer than the staleness bound:
// the replica cannot tell whether another one revoked the token, so it
// refuses rather than trust an old list.
var ErrRevocationsStale = errors.New("revocation list is stale")

// RevocationOptions say how a replica learns of revocations made by others
// sharing its database.
type RevocationOptions struct {
	// Now stamps revocations (revoked_at). If nil, time.Now.
	Now func() time.Time
	// Reconcile is how often Run re-reads the whole revocation table, which
	// bounds how long a missed notification can leave a revoked token
	// accepted. If zero, DefaultReconcile.
	Reconcile time.Duration
	// MaxStaleness is how long after the last successful read of the table
	// IsRevoked keeps answering; past it, IsRevoked fails with
	// ErrRevocationsStale (fail closed). It must exceed Reconcile. If zero,
	// DefaultMaxStaleness.
	MaxStaleness time.Duration
	// NoListen stops Run from listening for other replicas' revocations
	// with PostgreSQL LISTEN (for a connection pooler that cannot carry
	// LISTEN, such as PgBouncer in transaction mode): only the reconcile
	// then brings them. If false, Run listens on PostgreSQL; on SQLite it
	// never does.
	NoListen bool
	// Logger receives reconcile and listener failures. If nil,
	// slog.Default().
	Logger *slog.Logger
}

// Revocations is the persisted set of revoked token ids, kept in memory so
// that checking one costs a map lookup. It implements captoken.Revocations.
// Revoke writes to the database (and, on PostgreSQL, notifies the other
// replicas in the same transaction) before it updates the set, so a
// revocation that returned survives a restart. Run keeps the set current
// with the other replicas' revocations: through LISTEN/NOTIFY at once, and
// by re-reading the table every Reconcile in case a notification was lost.
// Revocations are permanent (a token id is never un-revoked), so the set
// only grows.
type Revocations struct {
	db   *store.DB
	opts RevocationOptions

	mu     sync.RWMutex
	ids    map[string]bool
	loaded time.Time // last successful read of the whole table (monotonic)
	failed bool      // the last reconcile failed (logged once per outage)
}

// OpenRevocations migrates db and loads its revocations. opts may be nil
// for the defaults. Call Run to follow other replicas' revocations;
// without it IsRevoked fails closed once MaxStaleness has passed.
func OpenRevocations(ctx context.Context, db *store.DB, opts *RevocationOptions) (*Revocations, error) {
	r := &Revocations{db: db, ids: map[string]bool{}}
	if opts != nil {
		r.opts = *opts
	}
	if r.opts.Now == nil {
		r.opts.Now = time.Now
	}
	if r.opts.Reconcile == 0 {
		r.opts.Reconcile = DefaultReconcile
	}
	if r.opts.MaxStaleness == 0 {
		r.opts.MaxStaleness = DefaultMaxStaleness
	}
	if r.opts.Logger == nil {
		r.opts.Logger = slog.Default()
	}
	if r.opts.Reconcile < 0 || r.opts.MaxStaleness <= r.opts.Reconcile {
		return nil, fmt.Errorf("revocations: the staleness bound (%s) must exceed the reconcile interval (%s)", r.opts.MaxStaleness, r.opts.Reconcile)
	}
	if err := db.Migrate(ctx, "gateway", migrations); err != nil {
		return nil, fmt.Errorf("migrating gateway tables: %w", err)
	}
	if err := r.reconcile(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// IsRevoked reports whether id is revoked. It fails with
// ErrRevocationsStale when the set was last read from the database longer
// ago than the staleness bound.
func (r *Revocations) IsRevoked(_ context.Context, id string) (bool, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if age := time.Since(r.loaded); age > r.opts.MaxStaleness {
		return false, fmt.Errorf("%w: last read from the database %s ago (bound %s)",
			ErrRevocationsStale, age.Round(time.Millisecond), r.opts.MaxStaleness)
	}
	return r.ids[id], nil
}

// Revoke records id as revoked and tells the other replicas. Revoking twice
// is not an error.
func (r *Revocations) Revoke(ctx context.Context, id string) error {
	if !validID(id) {
		return ErrBadID
	}
	err := r.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO gateway_revocations (id, revoked_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`,
			id, r.opts.Now().UTC().Format(time.RFC3339)); err != nil {
			return err
		}
		return tx.Notify(ctx, RevocationsChannel, id)
	})
	if err != nil {
		return fmt.Errorf("revoking %s: %w", id, err)
	}
	r.add(id)
	return nil
}

func (r *Revocations) add(id string) {
	r.mu.Lock()
	r.ids[id] = true
	r.mu.Unlock()
}

// reconcile re-reads the whole table into the set.
func (r *Revocations) reconcile(ctx context.Context) error {
	rows, err := r.db.Query(ctx, `SELECT id FROM gateway_revocations`)
	if err != nil {
		return fmt.Errorf("loading revocations: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("loading revocations: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("loading revocations: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.ids[id] = true
	}
	r.loaded = time.Now()
	return nil
}

// Run keeps the set current until ctx is done: it listens for other
// replicas' notifications (PostgreSQL, unless NoListen) and re-reads the
// table every Reconcile, and at once after the listener reconnected. Call
// it once, in its own goroutine.
func (r *Revocations) Run(ctx context.Context) {
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	if r.db.Dialect == store.Postgres && !r.opts.NoListen {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.listen(ctx, kick)
		}()
	}
	t := time.NewTicker(r.opts.Reconcile)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		// A hung query must not outlive the bound: IsRevoked refuses by
		// then anyway, and the next attempt may find the database back.
		rctx, cancel := context.WithTimeout(ctx, r.opts.MaxStaleness)
		err := r.reconcile(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		was := r.failed
		r.failed = err != nil
		r.mu.Unlock()
		switch {
		case err != nil && !was:
			r.opts.Logger.Error("revocations: cannot reconcile with the database; tokens will be refused once the list is older than the bound",
				"err", err, "bound", r.opts.MaxStaleness)
		case err == nil && was:
			r.opts.Logger.Info("revocations: reconciled with the database again")
		}
	}
}

// listen follows RevocationsChannel, reconnecting after failures; it asks
// for a reconcile whenever notifications may have been missed.
func (r *Revocations) listen(ctx context.Context, kick chan<- struct{}) {
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	for ctx.Err() == nil {
		l, err := store.Listen(ctx, r.db.DSN, RevocationsChannel)
		if err == nil {
			poke() // revocations made before LISTEN took effect
			err = r.follow(ctx, l, poke)
			l.Close()
		}
		if ctx.Err() != nil {
			return
		}
		r.opts.Logger.Warn("revocations: listener failed; relying on the reconcile until it is back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.opts.Reconcile):
		}
	}
}

func (r *Revocations) follow(ctx context.Context, l *store.Listener, poke func()) error {
	for {
		id, err := l.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, store.ErrReconnected):
			poke()
		case err != nil:
			return err
		case validID(id):
			// Adding an id can only refuse more tokens, so a notification
			// is trusted without a read.
			r.add(id)
		default:
			poke()
		}
	}
}
