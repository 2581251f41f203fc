package store

import (
	"context"
	"fmt"
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

// Migrate applies the steps of component that have not been applied yet,
// each in its own transaction, recording progress in schema_migrations.
// Several processes may migrate the same database at once: on PostgreSQL
// an advisory lock serializes them.
func (db *DB) Migrate(ctx context.Context, component string, steps []Migration) error {
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (component, version))`); err != nil {
		if !IsUniqueViolation(err) { // concurrent CREATE on PostgreSQL
			return fmt.Errorf("migrating %s: creating schema_migrations: %w", component, err)
		}
	}
	for i, m := range steps {
		version := i + 1
		err := db.InTx(ctx, func(tx *Tx) error {
			if db.Dialect == Postgres {
				if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(4242)`); err != nil {
					return err
				}
			}
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
