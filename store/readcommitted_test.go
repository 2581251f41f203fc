package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
)

// TestInTxReadCommitted: the transaction commits when fn returns nil and
// rolls back when it fails, on both databases.
func TestInTxReadCommitted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, `CREATE TABLE rc (n INTEGER NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		insert := func(fail error) error {
			return db.InTxReadCommitted(ctx, func(tx *store.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO rc (n) VALUES (?)`, 1); err != nil {
					return err
				}
				return fail
			})
		}
		boom := errors.New("boom")
		if err := insert(boom); !errors.Is(err, boom) {
			t.Fatalf("failing fn: %v", err)
		}
		if err := insert(nil); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM rc`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d rows (%v), want the committed one only", n, err)
		}
	})
}
