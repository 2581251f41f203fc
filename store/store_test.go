package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
)

var steps = []store.Migration{
	{SQLite: `CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB NOT NULL)`, Postgres: `CREATE TABLE kv (k TEXT PRIMARY KEY, v BYTEA NOT NULL)`},
	{SQLite: `ALTER TABLE kv ADD COLUMN n INTEGER NOT NULL DEFAULT 0`},
}

func TestConformance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for i := 0; i < 2; i++ { // migrating twice is a no-op
			if err := db.Migrate(ctx, "test", steps); err != nil {
				t.Fatalf("Migrate #%d: %v", i, err)
			}
		}
		if _, err := db.Exec(ctx, `INSERT INTO kv (k, v, n) VALUES (?, ?, ?)`, "a", []byte{1, 2}, 7); err != nil {
			t.Fatalf("insert: %v", err)
		}
		_, err := db.Exec(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "a", []byte{3})
		if !store.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert error = %v, want a unique violation", err)
		}
		errBoom := errors.New("boom")
		err = db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE kv SET n = 99 WHERE k = ?`, "a"); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx error = %v, want boom", err)
		}
		var n int
		var v []byte
		if err := db.QueryRow(ctx, `SELECT v, n FROM kv WHERE k = ?`, "a").Scan(&v, &n); err != nil {
			t.Fatalf("select: %v", err)
		}
		if n != 7 || len(v) != 2 {
			t.Fatalf("after rolled-back tx: v=%x n=%d, want 0102 and 7", v, n)
		}
		// Concurrent increments in transactions lose nothing.
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- db.InTx(ctx, func(tx *store.Tx) error {
					var cur int
					if err := tx.QueryRow(ctx, `SELECT n FROM kv WHERE k = ?`, "a").Scan(&cur); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `UPDATE kv SET n = ? WHERE k = ?`, cur+1, "a")
					return err
				})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent InTx: %v", err)
			}
		}
		if err := db.QueryRow(ctx, `SELECT n FROM kv WHERE k = ?`, "a").Scan(&n); err != nil {
			t.Fatalf("select: %v", err)
		}
		if n != 15 {
			t.Fatalf("after 8 concurrent increments n = %d, want 15", n)
		}
	})
}

func TestRebind(t *testing.T) {
	pg := &store.DB{Dialect: store.Postgres}
	if got := pg.Rebind(`SELECT ? , ?`); got != `SELECT $1 , $2` {
		t.Fatalf("Rebind = %q", got)
	}
	sq := &store.DB{Dialect: store.SQLite}
	if got := sq.Rebind(`SELECT ?`); got != `SELECT ?` {
		t.Fatalf("Rebind = %q", got)
	}
}
