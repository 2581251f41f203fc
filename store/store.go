// Package store opens the SQL databases ChatMCP keeps state in, SQLite (the
// embedded default) or PostgreSQL, and runs each component's schema
// migrations. It knows no server: the KBS, gateway and relay each define
// their own tables on top of a *DB.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect says which SQL database a DB talks to.
type Dialect int

const (
	SQLite Dialect = iota + 1
	Postgres
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "unknown"
}

// DB is an open database and its dialect. Queries are written with ?
// placeholders and passed through Rebind.
type DB struct {
	*sql.DB
	Dialect Dialect
	// DSN is the data source the DB was opened with (for PostgreSQL, what
	// a LISTEN connection needs).
	DSN string
}

// OpenIn opens dsn or, when dsn is empty, the SQLite file name in the data
// directory dir: the --db or --data choice every daemon offers.
func OpenIn(ctx context.Context, dsn, dir, name string) (*DB, error) {
	if dsn == "" {
		dsn = filepath.Join(dir, name)
	}
	return Open(ctx, dsn)
}

// Open opens dsn: a postgres:// or postgresql:// URL opens PostgreSQL, and
// anything else is a SQLite file path (created with its directory if
// missing). SQLite runs in WAL mode with synchronous=FULL, so a transaction
// that returned from Commit survives a kill -9 and a power cut.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return openPostgres(ctx, dsn)
	}
	return openSQLite(ctx, dsn)
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("opening sqlite: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("opening sqlite: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	sqlDB, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	return &DB{DB: sqlDB, Dialect: SQLite, DSN: path}, nil
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing postgres DSN: %w", err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	sqlDB.SetMaxOpenConns(20)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	return &DB{DB: sqlDB, Dialect: Postgres, DSN: dsn}, nil
}

// Rebind rewrites ? placeholders to $1, $2, … for PostgreSQL. Queries must
// not contain a literal ? (none of ChatMCP's do).
func (db *DB) Rebind(q string) string {
	if db.Dialect != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Exec runs a statement written with ? placeholders.
func (db *DB) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return db.DB.ExecContext(ctx, db.Rebind(q), args...)
}

// Query runs a query written with ? placeholders.
func (db *DB) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return db.DB.QueryContext(ctx, db.Rebind(q), args...)
}

// QueryRow runs a single-row query written with ? placeholders.
func (db *DB) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return db.DB.QueryRowContext(ctx, db.Rebind(q), args...)
}

// Tx is a transaction that rebinds placeholders like DB.
type Tx struct {
	*sql.Tx
	db *DB
}

// Exec runs a statement written with ? placeholders.
func (tx *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return tx.Tx.ExecContext(ctx, tx.db.Rebind(q), args...)
}

// Query runs a query written with ? placeholders.
func (tx *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, tx.db.Rebind(q), args...)
}

// QueryRow runs a single-row query written with ? placeholders.
func (tx *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return tx.Tx.QueryRowContext(ctx, tx.db.Rebind(q), args...)
}

// maxTxAttempts bounds how often InTx runs a transaction that keeps failing
// with serialization conflicts.
const maxTxAttempts = 20

// InTx runs fn in a transaction and commits it when fn returns nil. On
// PostgreSQL the transaction is SERIALIZABLE and is retried on a
// serialization failure or deadlock, after a short randomized backoff that
// grows with each attempt (contending writers then spread out instead of
// colliding again), so fn must be safe to run again.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	opts := &sql.TxOptions{}
	if db.Dialect == Postgres {
		opts.Isolation = sql.LevelSerializable
	}
	var err error
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		err = db.inTxOnce(ctx, opts, fn)
		if err == nil || !IsRetryable(err) {
			return err
		}
		backoff := time.Duration(attempt) * time.Millisecond
		backoff += time.Duration(rand.Int64N(int64(backoff)))
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
	}
	return fmt.Errorf("transaction still conflicting after %d attempts: %w", maxTxAttempts, err)
}

func (db *DB) inTxOnce(ctx context.Context, opts *sql.TxOptions, fn func(tx *Tx) error) error {
	sqlTx, err := db.DB.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	tx := &Tx{Tx: sqlTx, db: db}
	if err := fn(tx); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}

// InTxReadCommitted runs fn in a transaction at the database's default
// isolation (READ COMMITTED on PostgreSQL, where each statement sees what
// committed before it started; SQLite's BEGIN IMMEDIATE is serializable
// anyway) and commits it when fn returns nil. It never retries: it is for
// callers that serialize themselves with a lock their first statement
// takes (the signer's budget ledger).
func (db *DB) InTxReadCommitted(ctx context.Context, fn func(tx *Tx) error) error {
	return db.inTxOnce(ctx, &sql.TxOptions{}, fn)
}

// IsUniqueViolation reports whether err is a unique or primary key
// constraint violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsRetryable reports whether err is a PostgreSQL serialization failure or
// deadlock, after which the whole transaction may be run again.
func IsRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return false
}
