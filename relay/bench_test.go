package relay_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/relay/relaytest"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
)

// BenchmarkSend measures one accepted, durably stored message through the
// relay's HTTP API (pre-sealed envelope, recipient allowed the sender),
// next to the baseline of one bare committed insert of the same bytes on
// the same store.
func BenchmarkSend(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var db *store.DB
			if backend == "sqlite" {
				db = storetest.SQLite(b)
			} else {
				db = storetest.Postgres(b)
			}
			ctx := context.Background()
			r := relaytest.Start(b, db, relay.Options{DefaultDifficulty: testBits})
			alice, bob := newPerson(b), newPerson(b)
			ac, bc := alice.client(b, r.URL), bob.client(b, r.URL)
			if err := bc.Login(ctx); err != nil {
				b.Fatal(err)
			}
			if err := bc.Allow(ctx, alice.addr()); err != nil {
				b.Fatal(err)
			}
			if _, err := ac.SendDM(ctx, bob.addr(), "first"); err != nil {
				b.Fatal(err)
			}
			members := envelope.SortMembers([]wallet.Address{alice.addr(), bob.addr()})
			conv := &envelope.Conversation{ID: envelope.DMID(alice.addr(), bob.addr()), Kind: envelope.KindDM, Creator: alice.addr(), Epoch: 1, Members: members}
			seal := func() *envelope.Envelope {
				e, err := envelope.Seal(rand.Reader, ac.Device(), conv, []envelope.DeviceCert{bc.Device().Cert}, make([]byte, 256), time.Now())
				if err != nil {
					b.Fatal(err)
				}
				return e
			}
			raw := mustJSON(seal())
			if _, err := db.Exec(ctx, `CREATE TABLE bench_baseline (id INTEGER PRIMARY KEY, v BYTEA)`); err != nil {
				b.Fatal(err)
			}
			id := 0
			b.Run("baseline-insert", func(b *testing.B) {
				for b.Loop() {
					id++
					if _, err := db.Exec(ctx, `INSERT INTO bench_baseline (id, v) VALUES (?, ?)`, id, raw); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("relay-send", func(b *testing.B) {
				envs := make([]*envelope.Envelope, b.N)
				for i := range envs {
					envs[i] = seal()
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := ac.Post(ctx, envs[i]); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
