package authz

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
)

const testID = "00112233445566778899aabbccddeeff"

// replica opens dsn as another gateway replica would and runs its
// revocations until the test ends.
func replica(t *testing.T, dsn string, opts *RevocationOptions) (*Revocations, *store.DB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if opts == nil {
		opts = &RevocationOptions{}
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	r, err := OpenRevocations(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		db.Close()
	})
	return r, db
}

// waitRevoked polls r until id is revoked or the deadline passes, and
// returns how long it took.
func waitRevoked(t *testing.T, r *Revocations, id string, deadline time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		revoked, err := r.IsRevoked(context.Background(), id)
		if err != nil {
			t.Fatalf("IsRevoked: %v", err)
		}
		if revoked {
			return time.Since(start)
		}
		if time.Since(start) > deadline {
			t.Fatalf("revocation of %s not seen by the other replica after %s", id, deadline)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRevocationsAcrossReplicas revokes on replica A and expects replica B,
// sharing the database, to refuse within its bound: through NOTIFY alone
// (reconcile far away), and through the reconcile alone (no LISTEN).
func TestRevocationsAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		postgres bool
		opts     RevocationOptions
		deadline time.Duration
	}{
		{"postgres/notify", true, RevocationOptions{Reconcile: time.Hour, MaxStaleness: 2 * time.Hour}, 5 * time.Second},
		{"postgres/reconcile", true, RevocationOptions{Reconcile: 100 * time.Millisecond, NoListen: true}, 5 * time.Second},
		{"sqlite/reconcile", false, RevocationOptions{Reconcile: 100 * time.Millisecond}, 5 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var dsn string
			if c.postgres {
				dsn = storetest.PostgresDSN(t)
			} else {
				dsn = filepath.Join(t.TempDir(), "gw.db")
			}
			a, _ := replica(t, dsn, &RevocationOptions{})
			opts := c.opts
			b, _ := replica(t, dsn, &opts)
			if revoked, err := b.IsRevoked(ctx, testID); err != nil || revoked {
				t.Fatalf("before revocation: revoked=%v err=%v", revoked, err)
			}
			if err := a.Revoke(ctx, testID); err != nil {
				t.Fatal(err)
			}
			took := waitRevoked(t, b, testID, c.deadline)
			t.Logf("replica B refused after %s", took)
			// A replica started afterwards loads it at open.
			c2, _ := replica(t, dsn, nil)
			if revoked, err := c2.IsRevoked(ctx, testID); err != nil || !revoked {
				t.Fatalf("new replica: revoked=%v err=%v", revoked, err)
			}
		})
	}
}

// TestRevocationsFailClosed breaks the database under a replica: once its
// list is older than MaxStaleness, IsRevoked refuses with
// ErrRevocationsStale, and it recovers when the database answers again.
func TestRevocationsFailClosed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, err := OpenRevocations(ctx, db, &RevocationOptions{Reconcile: 50 * time.Millisecond, MaxStaleness: 300 * time.Millisecond, NoListen: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.Run(rctx)
		}()
		defer func() { cancel(); <-done }()
		if _, err := r.IsRevoked(ctx, testID); err != nil {
			t.Fatalf("fresh list: %v", err)
		}
		if _, err := db.Exec(ctx, `ALTER TABLE gateway_revocations RENAME TO gateway_revocations_away`); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := r.IsRevoked(ctx, testID)
			if errors.Is(err, ErrRevocationsStale) {
				t.Logf("refused: %v", err)
				break
			}
			if err != nil {
				t.Fatalf("IsRevoked error = %v, want ErrRevocationsStale", err)
			}
			if time.Now().After(deadline) {
				t.Fatal("IsRevoked kept answering from a list it could not re-read")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Meanwhile someone revoked testID; the database comes back.
		if _, err := db.Exec(ctx, `INSERT INTO gateway_revocations_away (id, revoked_at) VALUES (?, 'x')`, testID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `ALTER TABLE gateway_revocations_away RENAME TO gateway_revocations`); err != nil {
			t.Fatal(err)
		}
		deadline = time.Now().Add(5 * time.Second)
		for {
			revoked, err := r.IsRevoked(ctx, testID)
			if err == nil && revoked {
				break
			}
			if err == nil && !revoked {
				t.Fatal("after recovery the list misses the revocation made meanwhile")
			}
			if time.Now().After(deadline) {
				t.Fatalf("no recovery: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestRevocationOptionsBounds(t *testing.T) {
	db := storetest.SQLite(t)
	_, err := OpenRevocations(context.Background(), db, &RevocationOptions{Reconcile: 2 * time.Second, MaxStaleness: time.Second})
	if err == nil {
		t.Fatal("a staleness bound below the reconcile interval was accepted")
	}
}

// TestTokensRefuseOnStaleRevocations: once the revocation list is stale,
// Tokens.Verify refuses both a cached token and a new one, naming the
// stale list (not "revoked").
func TestTokensRefuseOnStaleRevocations(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	// No Run: nothing re-reads the table, so the list goes stale.
	revs, err := OpenRevocations(ctx, db, &RevocationOptions{Reconcile: 10 * time.Millisecond, MaxStaleness: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := captoken.NewKey()
	toks := NewTokens(key, "chatmcp-gateway:x", revs, nil)
	mint := func() string {
		tok, err := toks.Mint(captoken.Claims{Subject: "alice", Tools: []string{"fs_*"}, Expires: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cached := mint()
	if _, err := toks.Verify(ctx, cached); err != nil {
		t.Fatalf("fresh list: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := toks.Verify(ctx, cached)
		if err != nil {
			if !errors.Is(err, ErrRevocationsStale) || errors.Is(err, captoken.ErrRevoked) {
				t.Fatalf("cached token on a stale list: %v, want ErrRevocationsStale", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a stale revocation list still accepts tokens")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := toks.Verify(ctx, mint()); !errors.Is(err, ErrRevocationsStale) {
		t.Fatalf("new token on a stale list: %v, want ErrRevocationsStale", err)
	}
}
