package relay

import (
	"context"
	"crypto/rand"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json"
)

// A relay that ran the previous version may hold a group squatting on a
// direct conversation's ID (finding 1 of issue 8). Migrating removes it, and
// the real direct conversation can then be created and reaches its two
// members only.
func TestMigrationRemovesSquattedDM(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, "relay", migrations[:1]); err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewUnstartedServer(nil)
		defer ts.Close()
		people := make([]*chat.Client, 3)
		for i := range people {
			w, err := wallet.Generate(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if people[i], err = chat.New(&chat.Options{Relay: "http://" + ts.Listener.Addr().String(), Wallet: w, Home: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
		}
		alice, bob, mallory := people[0], people[1], people[2]

		// What the previous version accepted and stored: Mallory's group at
		// Alice and Bob's DM ID, with herself in it.
		dm := envelope.DMID(alice.Address(), bob.Address())
		op := &envelope.Op{Conversation: dm, Kind: envelope.KindGroup, Epoch: 1, Creator: mallory.Address(),
			Members: envelope.SortMembers([]wallet.Address{alice.Address(), bob.Address(), mallory.Address()}), At: time.Now().UnixMilli()}
		op.Sign(mallory.Device())
		raw, _ := json.Marshal(op)
		conv := &envelope.Conversation{ID: dm, Kind: op.Kind, Creator: op.Creator, Epoch: 1, Members: op.Members}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO relay_conversations (id, kind, creator, epoch, members_hash) VALUES (?, ?, ?, ?, ?)`, []any{dm, op.Kind, op.Creator.String(), 1, conv.MembersHash()}},
			{`INSERT INTO relay_ops (conversation, epoch, op) VALUES (?, ?, ?)`, []any{dm, 1, raw}},
			{`INSERT INTO relay_members (conversation, wallet, current) VALUES (?, ?, 1), (?, ?, 1), (?, ?, 1)`,
				[]any{dm, alice.Address().String(), dm, bob.Address().String(), dm, mallory.Address().String()}},
		} {
			if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
				t.Fatal(err)
			}
		}

		srv, err := New(ctx, db, &Options{Domain: ts.Listener.Addr().String(), DefaultDifficulty: 8})
		if err != nil {
			t.Fatal(err)
		}
		ts.Config.Handler = srv
		ts.Start()
		for _, c := range people {
			if err := c.Login(ctx); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM relay_members WHERE conversation = ?`, dm).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d members of the squatted ID after migrating (%v), want 0", n, err)
		}
		sent, err := alice.SendDM(ctx, bob.Address(), "for bob only")
		if err != nil {
			t.Fatal(err)
		}
		var envRaw []byte
		if err := db.QueryRow(ctx, `SELECT envelope FROM relay_messages WHERE id = ?`, sent.ID).Scan(&envRaw); err != nil {
			t.Fatal(err)
		}
		env, err := envelope.Parse(envRaw)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range env.Keys {
			if k.Device != alice.Device().Cert.Device && k.Device != bob.Device().Cert.Device {
				t.Fatalf("the direct message is wrapped for device %s, not alice's or bob's", k.Device)
			}
		}
		if len(env.Keys) != 2 {
			t.Fatalf("%d wrapped keys, want 2", len(env.Keys))
		}
	})
}
