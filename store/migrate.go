package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"
)

// Migration is one schema step of a component. Steps are identified by
// their position (1-based) and must never be edited once released: add a
// new step instead.
type Migration struct {
	// SQLite and Postgres are the statements for each dialect. If Postgres
	// is empty, SQLite's is used for both.
	SQLite   string
	Postgres string
}

// migrationLockKey is the PostgreSQL advisory lock every ChatMCP migrator
// (of any component) holds while it migrates. Releases before the
// session-level lock took the transaction-level lock on the same key, and
// the two conflict, so old and new replicas still serialize during a
// rolling upgrade.
const migrationLockKey = 4242

// Migrate applies the steps of component that have not been applied yet,
// each in its own transaction, recording progress in schema_migrations.
//
// Several processes may migrate the same database at once. On PostgreSQL a
// session-level advisory lock, taken on one dedicated connection before
// anything else and released after the last step, serializes them; every
// step's transaction starts after the lock was granted, so its snapshot
// sees whatever the previous holder committed (a lock taken inside a
// transaction whose snapshot was already taken does not: the second
// migrator re-ran the first one's steps). On SQLite each step's
// transaction is BEGIN IMMEDIATE, which takes the write lock before its
// first read.
func (db *DB) Migrate(ctx context.Context, component string, steps []Migration) error {
	if db.Dialect != Postgres {
		return db.migrate(ctx, component, steps, db.DB.BeginTx)
	}
	conn, err := db.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrating %s: connecting: %w", component, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("migrating %s: taking the migration lock: %w", component, err)
	}
	defer func() {
		// The lock belongs to the session: if it cannot be released, the
		// connection must not go back to the pool holding it.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, migrationLockKey); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return db.migrate(ctx, component, steps, conn.BeginTx)
}

func (db *DB) migrate(ctx context.Context, component string, steps []Migration,
	begin func(context.Context, *sql.TxOptions) (*sql.Tx, error)) error {
	// Under the lock (PostgreSQL) nobody else creates the table; on SQLite
	// CREATE … IF NOT EXISTS is atomic.
	create := func(tx *Tx) error {
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			component TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (component, version))`)
		return err
	}
	if err := db.stepTx(ctx, begin, create); err != nil {
		return fmt.Errorf("migrating %s: creating schema_migrations: %w", component, err)
	}
	for i, m := range steps {
		version := i + 1
		err := db.stepTx(ctx, begin, func(tx *Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component = ? AND version = ?`, component, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			stmt := m.SQLite
			if db.Dialect == Postgres && m.Postgres != "" {
				stmt = m.Postgres
			}
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (component, version) VALUES (?, ?)`, component, version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrating %s to version %d: %w", component, version, err)
		}
	}
	return nil
}

// stepTx runs fn in one transaction begun with begin (READ COMMITTED on
// PostgreSQL: the snapshot of each statement is taken after the migration
// lock was granted).
func (db *DB) stepTx(ctx context.Context, begin func(context.Context, *sql.TxOptions) (*sql.Tx, error), fn func(tx *Tx) error) error {
	sqlTx, err := begin(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	if err := fn(&Tx{Tx: sqlTx, db: db}); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}
