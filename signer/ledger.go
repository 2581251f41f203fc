package signer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/store"
)

var migrations = []store.Migration{{
	SQLite: `CREATE TABLE signer_reservations (
		signature TEXT PRIMARY KEY,
		principal TEXT NOT NULL,
		amount INTEGER NOT NULL,
		created INTEGER NOT NULL,
		state TEXT NOT NULL,
		message_sha256 TEXT NOT NULL,
		blockhash TEXT NOT NULL);
	CREATE INDEX signer_reservations_created ON signer_reservations (created);
	CREATE INDEX signer_reservations_principal ON signer_reservations (principal, created);
	CREATE TABLE signer_reservation_scopes (
		scope TEXT NOT NULL,
		signature TEXT NOT NULL REFERENCES signer_reservations (signature),
		PRIMARY KEY (scope, signature));`,
	Postgres: `CREATE TABLE signer_reservations (
		signature TEXT PRIMARY KEY,
		principal TEXT NOT NULL,
		amount BIGINT NOT NULL,
		created BIGINT NOT NULL,
		state TEXT NOT NULL,
		message_sha256 TEXT NOT NULL,
		blockhash TEXT NOT NULL);
	CREATE INDEX signer_reservations_created ON signer_reservations (created);
	CREATE INDEX signer_reservations_principal ON signer_reservations (principal, created);
	CREATE TABLE signer_reservation_scopes (
		scope TEXT NOT NULL,
		signature TEXT NOT NULL REFERENCES signer_reservations (signature),
		PRIMARY KEY (scope, signature));`,
}, {
	SQLite:   `CREATE TABLE signer_revocations (id TEXT PRIMARY KEY, revoked INTEGER NOT NULL);`,
	Postgres: `CREATE TABLE signer_revocations (id TEXT PRIMARY KEY, revoked BIGINT NOT NULL);`,
}, {
	// fee: the most lamports the transaction can cost the key in fees.
	SQLite:   `ALTER TABLE signer_reservations ADD COLUMN fee INTEGER NOT NULL DEFAULT 0;`,
	Postgres: `ALTER TABLE signer_reservations ADD COLUMN fee BIGINT NOT NULL DEFAULT 0;`,
}}

// Reservation states.
const (
	// StateReserved counts against every cap until released.
	StateReserved = "reserved"
	// StateHeld counts like StateReserved while a person decides; the
	// signature has not left the enclave.
	StateHeld = "held"
	// StateReleased no longer counts: the transaction was not used.
	StateReleased = "released"
)

// Ledger is the budget ledger: every signature the signer gives out for a
// transaction is a reservation that counts against the rolling windows
// and the token's budget caveats from the moment it is reserved, which is
// before the signature exists outside the enclave. The check and the
// insert are one transaction (BEGIN IMMEDIATE on SQLite, SERIALIZABLE with
// retries on PostgreSQL), so concurrent requests, on one replica or many,
// can never both pass a cap.
type Ledger struct {
	db  *store.DB
	now func() time.Time
}

// OpenLedger migrates db (component "signer") and returns its ledger. now
// is the clock; if nil, time.Now.
func OpenLedger(ctx context.Context, db *store.DB, now func() time.Time) (*Ledger, error) {
	if err := db.Migrate(ctx, "signer", migrations); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Ledger{db: db, now: now}, nil
}

// Cap is one cap a reservation must stay within.
type Cap struct {
	// Rule is the reason code naming the cap when it refuses.
	Rule string
	// Scope selects what counts: Principal (the reservation's principal),
	// "" (everything), or a token budget scope.
	Kind   CapKind
	Scope  string
	Max    uint64
	Period time.Duration
}

// CapKind says what a Cap sums.
type CapKind int

const (
	CapOverall CapKind = iota + 1
	CapPrincipal
	CapTokenScope
	// CapFees sums everyone's fees (lamports) instead of amounts.
	CapFees
)

// ReserveRequest is one reservation.
type ReserveRequest struct {
	// Signature is the signer's signature (base58): the reservation's key.
	Signature string
	Principal string
	Amount    uint64
	// Fee is the most lamports the transaction can cost the key in fees
	// (zero when another account pays them).
	Fee           uint64
	MessageSHA256 string
	Blockhash     string
	Caps          []Cap
	// Held records the reservation as waiting for a person (StateHeld)
	// until Confirm.
	Held bool
}

// Reserve records r if every cap still holds with it, atomically. It
// returns existing=true, reserving nothing, when the same signature is
// already reserved (the same message signed again: only one of the two
// can land on chain). A cap that would be exceeded is a *Refusal naming
// its rule.
func (l *Ledger) Reserve(ctx context.Context, r *ReserveRequest) (existing bool, err error) {
	now := l.now()
	err = l.serialized(ctx, func(tx *store.Tx) error {
		existing = false
		var state string
		switch err := tx.QueryRow(ctx, `SELECT state FROM signer_reservations WHERE signature = ?`, r.Signature).Scan(&state); {
		case err == nil && state == StateReserved:
			existing = true
			return nil
		case err == nil && state == StateHeld:
			// The same transaction is waiting for a person: a second
			// request must not get the signature around the approval.
			return refuse(signerapi.RuleApprovalPending, "the same transaction is waiting for a person's approval")
		case err == nil:
			// Released: the blockhash it was bound to has expired, so this
			// cannot be the same transaction landing; count it again.
			if _, err := tx.Exec(ctx, `DELETE FROM signer_reservation_scopes WHERE signature = ?`, r.Signature); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM signer_reservations WHERE signature = ?`, r.Signature); err != nil {
				return err
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		state = StateReserved
		if r.Held {
			state = StateHeld
		}
		for _, c := range r.Caps {
			since := now.Add(-c.Period).UnixMilli()
			var used int64
			var q string
			var args []any
			add := r.Amount
			switch c.Kind {
			case CapFees:
				q, args, add = `SELECT CAST(COALESCE(SUM(fee), 0) AS BIGINT) FROM signer_reservations WHERE state <> ? AND created > ?`, []any{StateReleased, since}, r.Fee
			case CapOverall:
				q, args = `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM signer_reservations WHERE state <> ? AND created > ?`, []any{StateReleased, since}
			case CapPrincipal:
				q, args = `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM signer_reservations WHERE principal = ? AND state <> ? AND created > ?`, []any{r.Principal, StateReleased, since}
			case CapTokenScope:
				q = `SELECT CAST(COALESCE(SUM(r.amount), 0) AS BIGINT) FROM signer_reservation_scopes s
					JOIN signer_reservations r ON r.signature = s.signature
					WHERE s.scope = ? AND r.state <> ? AND r.created > ?`
				args = []any{c.Scope, StateReleased, since}
			default:
				return fmt.Errorf("ledger: unknown cap kind %d", c.Kind)
			}
			if err := tx.QueryRow(ctx, q, args...).Scan(&used); err != nil {
				return fmt.Errorf("ledger: summing %s: %w", c.Rule, err)
			}
			if used < 0 || uint64(used)+add > c.Max || uint64(used)+add < add {
				unit := "base units"
				if c.Kind == CapFees {
					unit = "lamports of fees"
				}
				return refuse(c.Rule, "%d %s reserved in the last %s, %d more exceed %d", used, unit, c.Period, add, c.Max)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO signer_reservations (signature, principal, amount, fee, created, state, message_sha256, blockhash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.Signature, r.Principal, int64(r.Amount), int64(r.Fee), now.UnixMilli(), state, r.MessageSHA256, r.Blockhash); err != nil {
			return err
		}
		for _, c := range r.Caps {
			if c.Kind != CapTokenScope {
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO signer_reservation_scopes (scope, signature) VALUES (?, ?)`, c.Scope, r.Signature); err != nil && !store.IsUniqueViolation(err) {
				return err
			}
		}
		return nil
	})
	return existing, err
}

// reserveLockKey is the PostgreSQL advisory lock every reservation holds:
// the caps are sums over all reservations, so reservations are serialized.
const reserveLockKey = 4243

// serialized runs fn in a transaction that no other reservation runs
// concurrently with, on any replica. On SQLite that is the store's BEGIN
// IMMEDIATE. On PostgreSQL a SERIALIZABLE transaction would be correct
// too, but every reservation reads the same sums, so under load most of
// them abort and retry (some exhaust their retries: measured in
// docs/BENCHMARKS.md); instead a READ COMMITTED transaction takes a
// transaction-level advisory lock first, and each later statement's
// snapshot, taken after the lock was granted, sees every reservation
// committed before it.
func (l *Ledger) serialized(ctx context.Context, fn func(tx *store.Tx) error) error {
	if l.db.Dialect != store.Postgres {
		return l.db.InTx(ctx, fn)
	}
	return l.db.InTxReadCommitted(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(?)`, reserveLockKey); err != nil {
			return fmt.Errorf("ledger: taking the reservation lock: %w", err)
		}
		return fn(tx)
	})
}

// ErrNotReserved is returned by Release for a signature with no live
// reservation.
var ErrNotReserved = errors.New("no such reservation")

// Release marks the reservation of signature released, so it no longer
// counts. Only the signer itself (a request that failed after reserving:
// denied, timed out, not audited) and an operator through the admin API
// release; a principal cannot, since it could release a signature it
// already broadcast.
func (l *Ledger) Release(ctx context.Context, signature string) (*signerapi.Reservation, error) {
	var out signerapi.Reservation
	err := l.db.InTx(ctx, func(tx *store.Tx) error {
		var amount, created int64
		err := tx.QueryRow(ctx, `SELECT principal, amount, created FROM signer_reservations WHERE signature = ? AND state <> ?`,
			signature, StateReleased).Scan(&out.Principal, &amount, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotReserved
		}
		if err != nil {
			return err
		}
		out = signerapi.Reservation{Signature: signature, Principal: out.Principal, Amount: uint64(amount), State: StateReleased, Created: time.UnixMilli(created).UTC()}
		_, err = tx.Exec(ctx, `UPDATE signer_reservations SET state = ? WHERE signature = ?`, StateReleased, signature)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Confirm turns a held reservation into a plain one once a person
// approved it.
func (l *Ledger) Confirm(ctx context.Context, signature string) error {
	res, err := l.db.Exec(ctx, `UPDATE signer_reservations SET state = ? WHERE signature = ? AND state = ?`, StateReserved, signature, StateHeld)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("ledger: confirming %s: %d rows (%v)", signature, n, err)
	}
	return nil
}

// Reserved sums the live reservations of the last period (principal ""
// for everyone).
func (l *Ledger) Reserved(ctx context.Context, principal string, period time.Duration) (uint64, error) {
	since := l.now().Add(-period).UnixMilli()
	var used int64
	var err error
	if principal == "" {
		err = l.db.QueryRow(ctx, `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM signer_reservations WHERE state <> ? AND created > ?`, StateReleased, since).Scan(&used)
	} else {
		err = l.db.QueryRow(ctx, `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM signer_reservations WHERE principal = ? AND state <> ? AND created > ?`, principal, StateReleased, since).Scan(&used)
	}
	return uint64(used), err
}

// Revoke revokes a capability token id (32 hex digits: the token and
// every token attenuated from it) or chain id (64 hex digits: that chain
// and its descendants). Revoking twice is not an error.
func (l *Ledger) Revoke(ctx context.Context, id string) error {
	if !validRevocationID(id) {
		return fmt.Errorf("revocation id %q is not 32 or 64 lowercase hex digits", id)
	}
	_, err := l.db.Exec(ctx, `INSERT INTO signer_revocations (id, revoked) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`, id, l.now().Unix())
	return err
}

// IsRevoked implements captoken.Revocations from the store, so every
// replica sharing a PostgreSQL ledger refuses a revoked token at once.
func (l *Ledger) IsRevoked(ctx context.Context, id string) (bool, error) {
	var n int
	err := l.db.QueryRow(ctx, `SELECT COUNT(*) FROM signer_revocations WHERE id = ?`, id).Scan(&n)
	return n > 0, err
}

func validRevocationID(id string) bool {
	if len(id) != 32 && len(id) != 64 {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
