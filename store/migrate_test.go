package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
)

// TestMigrateConcurrentPostgres starts several migrators at once, each on
// its own connection pool, against one fresh PostgreSQL database: every
// one must succeed and the schema must be recorded exactly once per step
// (issue 8, finding 11: the second replica died with "relation … already
// exists").
func TestMigrateConcurrentPostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	steps := []store.Migration{
		{SQLite: `CREATE TABLE c1 (k TEXT PRIMARY KEY)`},
		{SQLite: `CREATE TABLE c2 (k TEXT PRIMARY KEY); CREATE INDEX c2_k ON c2 (k)`},
		{SQLite: `ALTER TABLE c1 ADD COLUMN n INTEGER NOT NULL DEFAULT 0`},
	}
	const replicas = 8
	dbs := make([]*store.DB, replicas)
	for i := range dbs {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	for round := 0; round < 2; round++ { // the second round finds every step applied
		start := make(chan struct{})
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i, db := range dbs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Two components at once: the lock is shared by all.
				comp := fmt.Sprintf("comp%d", i%2)
				errs[i] = db.Migrate(ctx, comp, prefixed(steps, comp))
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: migrator %d: %v", round, i, err)
			}
		}
	}
	for _, comp := range []string{"comp0", "comp1"} {
		rows, err := dbs[0].Query(ctx, `SELECT version FROM schema_migrations WHERE component = ? ORDER BY version`, comp)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		rows.Close()
		if fmt.Sprint(got) != "[1 2 3]" {
			t.Fatalf("schema_migrations for %s = %v, want [1 2 3]", comp, got)
		}
		if _, err := dbs[0].Exec(ctx, `INSERT INTO `+comp+`_c1 (k, n) VALUES ('a', 1)`); err != nil {
			t.Fatalf("%s: schema not usable after concurrent migration: %v", comp, err)
		}
	}
}

func prefixed(steps []store.Migration, comp string) []store.Migration {
	out := make([]store.Migration, len(steps))
	for i, s := range steps {
		out[i] = store.Migration{SQLite: replaceAll(s.SQLite, comp)}
	}
	return out
}

func replaceAll(stmt, comp string) string {
	r := strings.NewReplacer("TABLE c1", "TABLE "+comp+"_c1", "TABLE c2", "TABLE "+comp+"_c2",
		"INDEX c2_k ON c2", "INDEX "+comp+"_c2_k ON "+comp+"_c2")
	return r.Replace(stmt)
}
