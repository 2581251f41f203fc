package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/relay/relaytest"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json"
)

// testBits is the proof-of-work difficulty of test relays: cheap, but
// stamps are still minted and checked.
const testBits = 8

type person struct {
	w    *wallet.Keypair
	home string
}

func newPerson(t testing.TB) *person {
	w, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &person{w: w, home: t.TempDir()}
}

func (p *person) addr() wallet.Address { return p.w.Address() }

func (p *person) client(t testing.TB, url string) *chat.Client {
	t.Helper()
	c, err := chat.New(&chat.Options{Relay: url, Wallet: p.w, Home: p.home})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func texts(msgs []chat.Message) []string {
	var out []string
	for _, m := range msgs {
		if m.Err != "" {
			out = append(out, "ERR:"+m.Err)
		} else {
			out = append(out, m.Text)
		}
	}
	return out
}

func mustTexts(t *testing.T, c *chat.Client, o chat.ReadOptions) []string {
	t.Helper()
	msgs, err := c.ReadAll(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return texts(msgs)
}

func eq(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

func TestMessaging(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		alice, bob, carol := newPerson(t), newPerson(t), newPerson(t)
		ac, bc, cc := alice.client(t, r.URL), bob.client(t, r.URL), carol.client(t, r.URL)
		for _, c := range []*chat.Client{ac, bc, cc} {
			if err := c.Login(ctx); err != nil {
				t.Fatal(err)
			}
		}

		// First contact: a stamp is minted, the message lands in requests.
		if _, err := ac.SendDM(ctx, bob.addr(), "hello bob"); err != nil {
			t.Fatal(err)
		}
		if got := mustTexts(t, bc, chat.ReadOptions{Folder: relayapi.FolderInbox}); len(got) != 0 {
			t.Fatalf("bob's inbox before allow = %q", got)
		}
		if got := mustTexts(t, bc, chat.ReadOptions{Folder: relayapi.FolderRequests}); !eq(got, []string{"hello bob"}) {
			t.Fatalf("bob's requests = %q", got)
		}
		if err := bc.Allow(ctx, alice.addr()); err != nil {
			t.Fatal(err)
		}
		if got := mustTexts(t, bc, chat.ReadOptions{Folder: relayapi.FolderInbox}); !eq(got, []string{"hello bob"}) {
			t.Fatalf("bob's inbox after allow = %q", got)
		}
		// Replies need no stamp: alice allowed bob when she wrote first.
		if _, err := bc.SendDM(ctx, alice.addr(), "hi alice"); err != nil {
			t.Fatal(err)
		}
		if got := mustTexts(t, ac, chat.ReadOptions{Folder: relayapi.FolderInbox}); !eq(got, []string{"hello bob", "hi alice"}) {
			t.Fatalf("alice's inbox = %q", got)
		}

		// Groups: create, send, remove a member, send again.
		gid, err := ac.CreateGroup(ctx, []wallet.Address{bob.addr(), carol.addr()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ac.Send(ctx, gid, "to the group"); err != nil {
			t.Fatal(err)
		}
		if got := mustTexts(t, cc, chat.ReadOptions{Conversation: gid}); !eq(got, []string{"to the group"}) {
			t.Fatalf("carol's group messages = %q", got)
		}
		if err := bc.RemoveMember(ctx, gid, carol.addr()); err == nil {
			t.Fatal("a non-creator removed a member")
		}
		if err := ac.RemoveMember(ctx, gid, carol.addr()); err != nil {
			t.Fatal(err)
		}
		sent, err := ac.Send(ctx, gid, "after carol left")
		if err != nil {
			t.Fatal(err)
		}
		if got := mustTexts(t, bc, chat.ReadOptions{Conversation: gid}); !eq(got, []string{"to the group", "after carol left"}) {
			t.Fatalf("bob's group messages = %q", got)
		}
		if got := mustTexts(t, cc, chat.ReadOptions{Conversation: gid}); !eq(got, []string{"to the group"}) {
			t.Fatalf("carol's group messages after removal = %q", got)
		}
		// Even given the stored envelope, carol's device has no key for it.
		env := storedEnvelope(t, db, sent.ID)
		if _, err := envelope.Open(env, cc.Device(), stateAt(t, db, env)); !errors.Is(err, envelope.ErrNotRecipient) {
			t.Fatalf("removed member opening a later message: %v", err)
		}
		if _, err := cc.Send(ctx, gid, "let me back"); err == nil || !strings.Contains(err.Error(), "not a member") {
			t.Fatalf("removed member posting: %v", err)
		}

		// Deny: nothing more from carol reaches bob.
		if _, err := cc.SendDM(ctx, bob.addr(), "spam 1"); err != nil {
			t.Fatal(err)
		}
		if err := bc.Deny(ctx, carol.addr()); err != nil {
			t.Fatal(err)
		}
		if _, err := cc.SendDM(ctx, bob.addr(), "spam 2"); err != nil {
			t.Fatal(err)
		}
		for _, m := range must(bc.ReadAll(ctx, chat.ReadOptions{})) {
			if m.Sender.Equal(carol.addr()) {
				t.Fatalf("bob received %q from denied carol", m.Text)
			}
		}

		// Pagination: pages of 2 return everything once, in order.
		var paged []string
		var after int64
		for i := 0; ; i++ {
			page, next, err := bc.Read(ctx, chat.ReadOptions{After: after, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if len(page) > 2 {
				t.Fatalf("page of %d", len(page))
			}
			paged = append(paged, texts(page)...)
			after = next
		}
		if all := mustTexts(t, bc, chat.ReadOptions{}); !eq(paged, all) || len(all) != 4 {
			t.Fatalf("paged %q, all %q", paged, all)
		}

		// The relay holds no plaintext: neither the texts above nor a unique
		// one that cannot occur in any other test's data.
		var rnd [12]byte
		rand.Read(rnd[:])
		secret := fmt.Sprintf("secret-%x", rnd)
		sentSecret, err := ac.SendDM(ctx, bob.addr(), secret)
		if err != nil {
			t.Fatal(err)
		}
		assertNoPlaintext(t, db, []string{"hello bob", "hi alice", "to the group", "after carol left", "spam 1", secret}, sentSecret.ID)
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func storedEnvelope(t *testing.T, db *store.DB, id string) *envelope.Envelope {
	t.Helper()
	var raw []byte
	if err := db.QueryRow(context.Background(), `SELECT envelope FROM relay_messages WHERE id = ?`, id).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	e, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// stateAt rebuilds the verified membership at the envelope's epoch from
// the relay's stored ops.
func stateAt(t *testing.T, db *store.DB, e *envelope.Envelope) *envelope.Conversation {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT op FROM relay_ops WHERE conversation = ? AND epoch <= ? ORDER BY epoch`, e.Conversation, e.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var conv *envelope.Conversation
	for rows.Next() {
		var raw []byte
		rows.Scan(&raw)
		var op envelope.Op
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatal(err)
		}
		if conv, err = envelope.Apply(conv, &op); err != nil {
			t.Fatal(err)
		}
	}
	return conv
}

// assertNoPlaintext searches every byte the relay stored for each text:
// the SQLite files (database and write-ahead log), or every row of every
// table of the PostgreSQL database, as text and as hex.
// present is a stored value (the message ID) that must be found, to show
// the search looks where the data is.
func assertNoPlaintext(t *testing.T, db *store.DB, plain []string, present string) {
	t.Helper()
	ctx := context.Background()
	var haystack []byte
	switch db.Dialect {
	case store.SQLite:
		db.Exec(ctx, `PRAGMA wal_checkpoint(FULL)`)
		files, _ := filepath.Glob(db.DSN + "*")
		if len(files) == 0 {
			t.Fatal("no SQLite files found")
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			haystack = append(haystack, b...)
		}
	case store.Postgres:
		rows, err := db.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
		if err != nil {
			t.Fatal(err)
		}
		var tables []string
		for rows.Next() {
			var n string
			rows.Scan(&n)
			tables = append(tables, n)
		}
		rows.Close()
		if len(tables) < 5 {
			t.Fatalf("only %d tables found", len(tables))
		}
		for _, tb := range tables {
			rows, err := db.Query(ctx, `SELECT t::text FROM `+tb+` t`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var s string
				rows.Scan(&s)
				haystack = append(haystack, s...)
			}
			rows.Close()
		}
	}
	if db.Dialect == store.Postgres {
		// Also the server's files: this database's relations and the
		// write-ahead log, when this process may read them (CI runs as
		// root). The WAL is shared with other databases, so only the
		// unique secret (the last text) is searched there.
		files := postgresFiles(t, db)
		var wal []byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Logf("not searching PostgreSQL's files: %v", err)
				wal = nil
				break
			}
			wal = append(wal, b...)
		}
		if wal != nil {
			t.Logf("searched %d PostgreSQL files (%d bytes) for %q", len(files), len(wal), plain[len(plain)-1])
			if !bytes.Contains(wal, []byte(present)) {
				t.Errorf("stored message ID %s not found in PostgreSQL's files: the search looks in the wrong place", present)
			}
			if bytes.Contains(wal, []byte(plain[len(plain)-1])) {
				t.Errorf("plaintext %q found in PostgreSQL's files", plain[len(plain)-1])
			}
		}
	}
	if !bytes.Contains(haystack, []byte(present)) {
		t.Fatalf("stored message ID %s not found in %d bytes of stored data: the search looks in the wrong place", present, len(haystack))
	}
	for _, p := range plain {
		if bytes.Contains(haystack, []byte(p)) || bytes.Contains(bytes.ToLower(haystack), []byte(hexOf(p))) {
			t.Errorf("plaintext %q found in the relay's data", p)
		}
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

var _ = http.StatusOK
var _ = time.Second

// postgresFiles lists the files of the database's tables, TOAST tables and
// indexes, and the server's WAL segments, after a checkpoint.
func postgresFiles(t *testing.T, db *store.DB) []string {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Exec(ctx, `CHECKPOINT`); err != nil {
		t.Logf("CHECKPOINT: %v", err)
	}
	var dataDir string
	if err := db.QueryRow(ctx, `SHOW data_directory`).Scan(&dataDir); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, `SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 't', 'i') AND n.nspname IN ('public', 'pg_toast') AND pg_relation_filepath(c.oid) IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var files []string
	for rows.Next() {
		var rel string
		rows.Scan(&rel)
		segs, _ := filepath.Glob(filepath.Join(dataDir, rel) + "*")
		files = append(files, segs...)
	}
	wal, _ := filepath.Glob(filepath.Join(dataDir, "pg_wal", "0*"))
	return append(files, wal...)
}
