package facilitator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/chatmcp/chatmcp/store"
)

// migrations is the settlement ledger. One row per transaction message
// (its SHA-256: the same transfer however many times its payer re-signs
// it), unique by the transaction's signature once signed and by payment
// identifier when the payment carries one. A row is written before the
// fee payer signs, so two settlements of one payment cannot both reach
// the chain, on one replica or many sharing PostgreSQL.
var migrations = []store.Migration{{
	SQLite: `
CREATE TABLE x402_settlements (message_hash BLOB PRIMARY KEY, signature TEXT UNIQUE, payment_id TEXT UNIQUE,
  payload_hash BLOB NOT NULL, network TEXT NOT NULL, payer TEXT NOT NULL, pay_to TEXT NOT NULL,
  asset TEXT NOT NULL, amount TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
  created INTEGER NOT NULL, updated INTEGER NOT NULL);
`,
	Postgres: `
CREATE TABLE x402_settlements (message_hash BYTEA PRIMARY KEY, signature TEXT UNIQUE, payment_id TEXT UNIQUE,
  payload_hash BYTEA NOT NULL, network TEXT NOT NULL, payer TEXT NOT NULL, pay_to TEXT NOT NULL,
  asset TEXT NOT NULL, amount TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
  created BIGINT NOT NULL, updated BIGINT NOT NULL);
`,
}}

// Settlement states.
const (
	StatePending = "pending" // reserved; being signed, sent or confirmed (or its outcome unknown)
	StateSettled = "settled" // confirmed on chain
	StateFailed  = "failed"  // landed and failed on chain: the fee is spent, the transfer did not happen
)

// Settlement is one ledger row.
type Settlement struct {
	MessageHash []byte
	Signature   string
	PaymentID   string
	PayloadHash []byte
	Network     string
	Payer       string
	PayTo       string
	Asset       string
	Amount      string
	State       string
	Reason      string
}

// Ledger records settlements durably.
type Ledger struct {
	db  *store.DB
	now func() time.Time
}

// errTaken is returned by reserve when a row holds the message or the
// payment identifier; existing is that row.
type errTaken struct{ existing *Settlement }

func (e *errTaken) Error() string { return "already in the settlement ledger" }

// reserve inserts a pending row for s, or returns *errTaken with the row
// that already holds its message hash or payment identifier.
func (l *Ledger) reserve(ctx context.Context, s *Settlement) error {
	now := l.now().UnixMilli()
	var pid any
	if s.PaymentID != "" {
		pid = s.PaymentID
	}
	_, err := l.db.Exec(ctx, `INSERT INTO x402_settlements (message_hash, payment_id, payload_hash, network, payer, pay_to, asset, amount, state, created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, s.MessageHash, pid, s.PayloadHash, s.Network, s.Payer, s.PayTo, s.Asset, s.Amount, StatePending, now, now)
	if err == nil {
		return nil
	}
	if !store.IsUniqueViolation(err) {
		return fmt.Errorf("settlement ledger: %w", err)
	}
	ex, lerr := l.find(ctx, s.MessageHash, s.PaymentID)
	if lerr != nil {
		return fmt.Errorf("settlement ledger: %w", lerr)
	}
	if ex == nil {
		// The row that collided was released in between: a retry is a
		// new attempt, but refusing is the safe answer.
		ex = &Settlement{State: StatePending}
	}
	return &errTaken{existing: ex}
}

// find returns the row holding messageHash or paymentID, or nil.
func (l *Ledger) find(ctx context.Context, messageHash []byte, paymentID string) (*Settlement, error) {
	var s Settlement
	var sig, pid sql.NullString
	err := l.db.QueryRow(ctx, `SELECT message_hash, signature, payment_id, payload_hash, network, payer, pay_to, asset, amount, state, reason
FROM x402_settlements WHERE message_hash = ? OR (payment_id IS NOT NULL AND payment_id = ?) LIMIT 1`, messageHash, paymentID).Scan(
		&s.MessageHash, &sig, &pid, &s.PayloadHash, &s.Network, &s.Payer, &s.PayTo, &s.Asset, &s.Amount, &s.State, &s.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.Signature, s.PaymentID = sig.String, pid.String
	return &s, nil
}

// Lookup returns the settlement of a transaction signature, or nil.
func (l *Ledger) Lookup(ctx context.Context, signature string) (*Settlement, error) {
	var s Settlement
	var sig, pid sql.NullString
	err := l.db.QueryRow(ctx, `SELECT message_hash, signature, payment_id, payload_hash, network, payer, pay_to, asset, amount, state, reason
FROM x402_settlements WHERE signature = ?`, signature).Scan(
		&s.MessageHash, &sig, &pid, &s.PayloadHash, &s.Network, &s.Payer, &s.PayTo, &s.Asset, &s.Amount, &s.State, &s.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.Signature, s.PaymentID = sig.String, pid.String
	return &s, nil
}

func (l *Ledger) setSignature(ctx context.Context, messageHash []byte, sig string) error {
	_, err := l.db.Exec(ctx, `UPDATE x402_settlements SET signature = ?, updated = ? WHERE message_hash = ?`, sig, l.now().UnixMilli(), messageHash)
	return err
}

// finish moves a pending row to state. It reports false when the row was
// not pending any more: another call already recorded its outcome, and
// only the call that moved it may answer success.
func (l *Ledger) finish(ctx context.Context, messageHash []byte, state, reason string) (bool, error) {
	res, err := l.db.Exec(ctx, `UPDATE x402_settlements SET state = ?, reason = ?, updated = ? WHERE message_hash = ? AND state = ?`,
		state, reason, l.now().UnixMilli(), messageHash, StatePending)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// release deletes a pending row whose transaction certainly never
// reached the chain (the fee payer refused to sign, or the RPC refused it
// in preflight), so that the payer may retry.
func (l *Ledger) release(ctx context.Context, messageHash []byte) error {
	_, err := l.db.Exec(ctx, `DELETE FROM x402_settlements WHERE message_hash = ? AND state = ?`, messageHash, StatePending)
	return err
}
