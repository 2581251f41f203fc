package relay_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/relay/relaytest"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
)

// watchOne watches c and returns a channel of received texts.
func watchOne(t *testing.T, ctx context.Context, c *chat.Client) <-chan chat.Message {
	t.Helper()
	got := make(chan chat.Message, 16)
	go c.Watch(ctx, 0, func(m chat.Message) error { got <- m; return nil })
	return got
}

// waitWatchers waits until srv holds at least n live watchers: a message
// sent after that reaches them through the notification path.
func waitWatchers(t *testing.T, srv *relay.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for srv.LiveWatchers() < n {
		if time.Now().After(deadline) {
			t.Fatalf("relay holds %d live watchers after 10s, want %d", srv.LiveWatchers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func expect(t *testing.T, got <-chan chat.Message, text string) {
	t.Helper()
	select {
	case m := <-got:
		if m.Text != text {
			t.Fatalf("watched %q (err %q), want %q", m.Text, m.Err, text)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no live delivery of %q within 10s", text)
	}
}

func TestWatchLive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		alice, bob := newPerson(t), newPerson(t)
		ac, bc := alice.client(t, r.URL), bob.client(t, r.URL)
		if err := bc.Login(ctx); err != nil {
			t.Fatal(err)
		}
		got := watchOne(t, ctx, bc)
		waitWatchers(t, r.Srv, 1)
		for _, text := range []string{"one", "two"} {
			if _, err := ac.SendDM(ctx, bob.addr(), text); err != nil {
				t.Fatal(err)
			}
			expect(t, got, text)
		}
	})
}

// Two relay replicas on one PostgreSQL database deliver each other's
// messages to live watchers through LISTEN/NOTIFY.
func TestReplicasLive(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() *store.DB {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	// Poll only every hour: a delivery within seconds proves the
	// notification, not the poll, woke the watcher.
	r1 := relaytest.Start(t, open(), relay.Options{DefaultDifficulty: testBits, PollInterval: time.Hour})
	r2 := relaytest.Start(t, open(), relay.Options{DefaultDifficulty: testBits, PollInterval: time.Hour})
	alice, bob := newPerson(t), newPerson(t)
	ac, bc := alice.client(t, r1.URL), bob.client(t, r2.URL)
	if err := bc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ac.Login(ctx); err != nil {
		t.Fatal(err)
	}
	bobWatch := watchOne(t, ctx, bc)
	aliceWatch := watchOne(t, ctx, ac)
	waitWatchers(t, r1.Srv, 1)
	waitWatchers(t, r2.Srv, 1)
	// Sign-in domains differ per replica here (two ports), which is why each
	// person uses one replica throughout.
	if _, err := ac.SendDM(ctx, bob.addr(), "via replica one"); err != nil {
		t.Fatal(err)
	}
	expect(t, aliceWatch, "via replica one") // the sender's own copy, same replica
	expect(t, bobWatch, "via replica one")   // bob on the other replica
	if err := bc.Allow(ctx, alice.addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.SendDM(ctx, alice.addr(), "via replica two"); err != nil {
		t.Fatal(err)
	}
	expect(t, bobWatch, "via replica two")
	expect(t, aliceWatch, "via replica two")
}

func TestRevokedDevice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		alice, bob := newPerson(t), newPerson(t)
		laptop := alice.client(t, r.URL)
		phoneHome := &person{w: alice.w, home: t.TempDir()}
		phone := phoneHome.client(t, r.URL)
		bc := bob.client(t, r.URL)
		for _, c := range []*chat.Client{laptop, phone, bc} {
			if err := c.Login(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := laptop.Allow(ctx, bob.addr()); err != nil {
			t.Fatal(err)
		}
		if _, err := bc.SendDM(ctx, alice.addr(), "before"); err != nil {
			t.Fatal(err)
		}
		if got := mustTexts(t, phone, chat.ReadOptions{}); !eq(got, []string{"before"}) {
			t.Fatalf("phone before revocation: %q", got)
		}
		devs, err := laptop.Devices(ctx)
		if err != nil || len(devs) != 2 {
			t.Fatalf("devices = %v, %v", devs, err)
		}
		if err := laptop.RevokeDevice(ctx, phone.Device().Cert.Device); err != nil {
			t.Fatal(err)
		}
		sent, err := bc.SendDM(ctx, alice.addr(), "after")
		if err != nil {
			t.Fatal(err)
		}
		if got := mustTexts(t, laptop, chat.ReadOptions{}); !eq(got, []string{"before", "after"}) {
			t.Fatalf("laptop: %q", got)
		}
		env := storedEnvelope(t, db, sent.ID)
		if _, err := envelope.Open(env, phone.Device(), stateAt(t, db, env)); !errors.Is(err, envelope.ErrNotRecipient) {
			t.Fatalf("revoked device opening a later message: %v", err)
		}
		if _, err := phone.ReadAll(ctx, chat.ReadOptions{}); err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("revoked device reading: %v", err)
		}
		if err := laptop.RevokeDevice(ctx, phone.Device().Cert.Device); err == nil {
			t.Fatal("revoked twice")
		}
	})
}

// With no difficulty configured, the relay enforces stamp.DefaultBits.
func TestDefaultDifficulty(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	r := relaytest.Start(t, db, relay.Options{}) // zero: the relay's default
	alice, bob := newPerson(t), newPerson(t)
	ac, bc := alice.client(t, r.URL), bob.client(t, r.URL)
	if err := bc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The client learns the difficulty from the relay's refusal and mints.
	if _, err := ac.SendDM(ctx, bob.addr(), "worth a second"); err != nil {
		t.Fatal(err)
	}
	t.Logf("minting a %d-bit stamp and sending took %v", stamp.DefaultBits, time.Since(start))
	// A client that will not mint that much is refused with a clear error.
	lazy, err := chat.New(&chat.Options{Relay: r.URL, Wallet: alice.w, Home: alice.home, MaxStampBits: stamp.DefaultBits - 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lazy.SendDM(ctx, bob.addr(), "cheap"); err == nil || !strings.Contains(err.Error(), "asks for a 23-bit stamp") {
		t.Fatalf("send with too little work: %v", err)
	}
	var n int
	db.QueryRow(ctx, `SELECT COUNT(*) FROM relay_deliveries WHERE recipient = ?`, bob.addr().String()).Scan(&n)
	if n != 1 {
		t.Fatalf("bob has %d deliveries, want 1", n)
	}
	// And publishes it.
	u, err := bc.User(ctx, bob.addr())
	if err != nil || u.Difficulty != stamp.DefaultBits {
		t.Fatalf("published difficulty = %v, %v; want %d", u, err, stamp.DefaultBits)
	}
}
