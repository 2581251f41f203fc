// Package storetest runs a store conformance suite against every database
// ChatMCP supports: a fresh SQLite file, and a fresh database on the real
// PostgreSQL server named by CHATMCP_TEST_POSTGRES_DSN (skipped, saying
// why, when that variable is unset).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/chatmcp/chatmcp/store"
)

// EnvDSN names the environment variable holding an admin DSN for a
// PostgreSQL server tests may create databases on.
const EnvDSN = "CHATMCP_TEST_POSTGRES_DSN"

// Each runs fn as a subtest against a fresh SQLite database and a fresh
// PostgreSQL database.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite opens a fresh SQLite database in a temporary directory.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("opening sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresDSN creates a fresh database on the test server and returns its
// DSN; the database is dropped when the test ends. It skips the test when
// CHATMCP_TEST_POSTGRES_DSN is unset.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvDSN)
	if admin == "" {
		t.Skipf("%s is unset: no PostgreSQL server to test against (.ci/run starts one)", EnvDSN)
	}
	ctx := context.Background()
	adb, err := store.Open(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to test PostgreSQL: %v", err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := "chatmcp_test_" + hex.EncodeToString(rnd[:])
	if _, err := adb.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		adb.Close()
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		adb.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		adb.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parsing %s: %v", EnvDSN, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres opens a fresh PostgreSQL database (see PostgresDSN).
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	dsn := PostgresDSN(t)
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("opening postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
