package relay_test

// Regression tests for the findings of the security review (issue 8): each
// replays the attack against a real relay over loopback HTTP, with real
// chat clients, on SQLite and PostgreSQL.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
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

// loggedIn returns signed-in clients for people.
func loggedIn(t *testing.T, url string, people ...*person) []*chat.Client {
	t.Helper()
	var out []*chat.Client
	for _, p := range people {
		c := p.client(t, url)
		if err := c.Login(context.Background()); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// later is p's client (same device and session) with a clock one second
// ahead, so that what it signs (a revocation) is strictly after anything
// signed before, even within one millisecond.
func later(t *testing.T, url string, p *person) *chat.Client {
	t.Helper()
	c, err := chat.New(&chat.Options{Relay: url, Wallet: p.w, Home: p.home, Now: func() time.Time { return time.Now().Add(time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func countRows(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Finding 1: Mallory creates a group at the predictable ID of Alice and
// Bob's direct conversation, with herself in it, so that Alice's "direct"
// message would be sealed to her too and the real DM could never exist.
func TestDMSquattingRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		domain := strings.TrimPrefix(r.URL, "http://")
		alice, bob, mallory := newPerson(t), newPerson(t), newPerson(t)
		cs := loggedIn(t, r.URL, alice, bob, mallory)
		ac, bc, mc := cs[0], cs[1], cs[2]
		mtok := token(t, r.URL, domain, mallory.w, mc.Device())

		dm := envelope.DMID(alice.addr(), bob.addr())
		three := envelope.SortMembers([]wallet.Address{alice.addr(), bob.addr(), mallory.addr()})
		squat := &envelope.Op{Conversation: dm, Kind: envelope.KindGroup, Epoch: 1, Creator: mallory.addr(), Members: three, At: time.Now().UnixMilli()}
		squat.Sign(mc.Device())
		squatNonce := *squat
		squatNonce.Nonce = make([]byte, envelope.GroupNonceSize)
		rand.Read(squatNonce.Nonce)
		squatNonce.Sign(mc.Device())
		fakeDM := &envelope.Op{Conversation: dm, Kind: envelope.KindDM, Epoch: 1, Creator: mallory.addr(),
			Members: envelope.SortMembers([]wallet.Address{alice.addr(), mallory.addr()}), At: time.Now().UnixMilli()}
		fakeDM.Sign(mc.Device())
		for _, tt := range []struct {
			name   string
			op     *envelope.Op
			reason string
		}{
			{"group at a DM ID (the review's attack)", squat, relayapi.ReasonBadOp},
			{"group with a nonce at a DM ID", &squatNonce, relayapi.ReasonConversationID},
			{"DM of other members at a DM ID", fakeDM, relayapi.ReasonConversationID},
		} {
			status, msg, body := call(t, "POST", r.URL+"/v1/conversations", mtok, marshal(relayapi.OpRequest{Op: *tt.op}))
			if status != 400 || reasonOf(body) != tt.reason {
				t.Fatalf("%s: got %d %q (%s), want 400 (%s)", tt.name, status, msg, reasonOf(body), tt.reason)
			}
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM relay_conversations`); n != 0 {
			t.Fatalf("%d conversations stored after refused squats, want 0", n)
		}

		// The real direct conversation can be created, and its messages are
		// wrapped for Alice's and Bob's devices only.
		sent, err := ac.SendDM(ctx, bob.addr(), "for bob only")
		if err != nil {
			t.Fatal(err)
		}
		if sent.Conversation != dm {
			t.Fatalf("DM sent to %s, want %s", sent.Conversation, dm)
		}
		env := storedEnvelope(t, db, sent.ID)
		var devices []string
		for _, k := range env.Keys {
			devices = append(devices, k.Device)
		}
		slices.Sort(devices)
		want := []string{ac.Device().Cert.Device, bc.Device().Cert.Device}
		slices.Sort(want)
		if !slices.Equal(devices, want) {
			t.Fatalf("DM wrapped for devices %v, want only alice's and bob's %v", devices, want)
		}
		if got := mustTexts(t, bc, chat.ReadOptions{Folder: relayapi.FolderRequests}); !eq(got, []string{"for bob only"}) {
			t.Fatalf("bob's requests: %q", got)
		}
		msgs, err := bc.ReadAll(ctx, chat.ReadOptions{Conversation: dm})
		if err != nil || len(msgs) != 1 || msgs[0].Kind != envelope.KindDM {
			t.Fatalf("bob's DM: %+v, %v", msgs, err)
		}
		// Mallory learns nothing of it.
		if status, _, body := call(t, "GET", r.URL+"/v1/conversations/"+dm, mtok, nil); status != 404 || reasonOf(body) != relayapi.ReasonUnknownConversation {
			t.Fatalf("mallory fetching the DM: %d %s", status, body)
		}
		if _, err := mc.Send(ctx, dm, "let me in"); !chat.IsReason(err, relayapi.ReasonUnknownConversation) {
			t.Fatalf("mallory sending to the DM: %v", err)
		}
	})
}

// Finding 6, first part: a removed member kept reading the group's later
// membership changes.
func TestFormerMemberSeesOpsOnlyUntilRemoval(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		domain := strings.TrimPrefix(r.URL, "http://")
		alice, bob, carol, dave := newPerson(t), newPerson(t), newPerson(t), newPerson(t)
		cs := loggedIn(t, r.URL, alice, bob, carol, dave)
		ac, bc, cc := cs[0], cs[1], cs[2]

		g, err := ac.CreateGroup(ctx, []wallet.Address{bob.addr(), carol.addr()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ac.Send(ctx, g, "while carol is in"); err != nil {
			t.Fatal(err)
		}
		if err := ac.RemoveMember(ctx, g, carol.addr()); err != nil {
			t.Fatal(err)
		}
		if err := ac.AddMember(ctx, g, dave.addr()); err != nil {
			t.Fatal(err)
		}
		if _, err := ac.Send(ctx, g, "after carol left"); err != nil {
			t.Fatal(err)
		}

		ops := func(c *chat.Client, w *wallet.Keypair) []envelope.Op {
			t.Helper()
			status, msg, body := call(t, "GET", r.URL+"/v1/conversations/"+g, token(t, r.URL, domain, w, c.Device()), nil)
			if status != 200 {
				t.Fatalf("fetching ops: %d %s", status, msg)
			}
			var resp relayapi.ConversationResponse
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			return resp.Ops
		}
		carolOps := ops(cc, carol.w)
		if len(carolOps) != 2 || carolOps[1].Epoch != 2 || slices.ContainsFunc(carolOps[1].Members, carol.addr().Equal) {
			t.Fatalf("former member got %d ops, want 2 (creation and her removal)", len(carolOps))
		}
		for _, op := range carolOps {
			if slices.ContainsFunc(op.Members, dave.addr().Equal) {
				t.Fatal("former member learned of a member added after her removal")
			}
		}
		if n := len(ops(bc, bob.w)); n != 3 {
			t.Fatalf("current member got %d ops, want 3", n)
		}
		// What Carol received while a member still verifies and opens.
		if got := mustTexts(t, cc, chat.ReadOptions{Conversation: g}); !eq(got, []string{"while carol is in"}) {
			t.Fatalf("former member's messages: %q", got)
		}
	})
}

// Finding 6, second part: anyone could add any wallet to a group, unasked
// and free. Now it costs the stamp a first message costs, and the group
// waits in the member's requests until they allow its creator.
func TestUnsolicitedGroupNeedsStampAndWaitsInRequests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		domain := strings.TrimPrefix(r.URL, "http://")
		mallory, bob, carol := newPerson(t), newPerson(t), newPerson(t)
		cs := loggedIn(t, r.URL, mallory, bob, carol)
		mc, bc, cc := cs[0], cs[1], cs[2]
		mtok := token(t, r.URL, domain, mallory.w, mc.Device())

		// The attack: a group with Bob in it, without a stamp.
		op, err := envelope.NewGroupOp(rand.Reader, mallory.addr(), []wallet.Address{bob.addr()}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		op.Sign(mc.Device())
		status, msg, body := call(t, "POST", r.URL+"/v1/conversations", mtok, marshal(relayapi.OpRequest{Op: *op}))
		var e relayapi.Error
		json.Unmarshal(body, &e)
		if status != 402 || e.Reason != relayapi.ReasonStampRequired || len(e.Stamps) != 1 || !e.Stamps[0].Recipient.Equal(bob.addr()) || e.Stamps[0].Bits != testBits {
			t.Fatalf("unstamped group with a stranger: %d %q %+v, want 402 stamp_required for bob", status, msg, e)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM relay_conversations`); n != 0 {
			t.Fatalf("%d conversations stored after the refusal, want 0", n)
		}

		// Paying the stamp (the client mints it) creates the group, which
		// waits in Bob's requests with the creator's messages.
		g, err := mc.CreateGroup(ctx, []wallet.Address{bob.addr()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mc.Send(ctx, g, "join my group"); err != nil {
			t.Fatal(err)
		}
		listed := func(c *chat.Client) (inbox, requests []string) {
			t.Helper()
			inbox, requests, err := c.Conversations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return inbox, requests
		}
		if inbox, requests := listed(bc); slices.Contains(inbox, g) || !slices.Contains(requests, g) {
			t.Fatalf("bob's conversations %v, requests %v: want the group in requests only", inbox, requests)
		}
		if got := mustTexts(t, bc, chat.ReadOptions{Folder: relayapi.FolderRequests}); !eq(got, []string{"join my group"}) {
			t.Fatalf("bob's requests: %q", got)
		}
		if inbox, _ := listed(mc); !slices.Contains(inbox, g) {
			t.Fatalf("the creator's own group is not in her conversations: %v", inbox)
		}
		if err := bc.Allow(ctx, mallory.addr()); err != nil {
			t.Fatal(err)
		}
		if inbox, requests := listed(bc); !slices.Contains(inbox, g) || slices.Contains(requests, g) {
			t.Fatalf("after allowing: conversations %v, requests %v", inbox, requests)
		}
		// An allowed creator needs no stamp.
		op2, _ := envelope.NewGroupOp(rand.Reader, mallory.addr(), []wallet.Address{bob.addr()}, time.Now())
		op2.Sign(mc.Device())
		if status, msg, _ := call(t, "POST", r.URL+"/v1/conversations", mtok, marshal(relayapi.OpRequest{Op: *op2})); status != 201 {
			t.Fatalf("group with a member who allowed the creator: %d %s", status, msg)
		}

		// Adding a stranger to an existing group costs a stamp too; a
		// member who denied the creator never sees the group.
		if err := cc.Deny(ctx, mallory.addr()); err != nil {
			t.Fatal(err)
		}
		add := &envelope.Op{Conversation: g, Kind: envelope.KindGroup, Epoch: 2, Creator: mallory.addr(),
			Members: envelope.SortMembers([]wallet.Address{mallory.addr(), bob.addr(), carol.addr()}), At: time.Now().UnixMilli()}
		add.Sign(mc.Device())
		if status, _, body := call(t, "POST", r.URL+"/v1/conversations/"+g+"/ops", mtok, marshal(relayapi.OpRequest{Op: *add})); status != 402 || reasonOf(body) != relayapi.ReasonStampRequired {
			t.Fatalf("unstamped add of a stranger: %d %s", status, body)
		}
		if err := mc.AddMember(ctx, g, carol.addr()); err != nil {
			t.Fatal(err)
		}
		if inbox, requests := listed(cc); slices.Contains(inbox, g) || slices.Contains(requests, g) {
			t.Fatalf("carol denied the creator but sees the group: %v %v", inbox, requests)
		}
	})
}

// Finding 10: an envelope signed by a device after its revocation was
// accepted by clients. Two ways it reaches them: a session checked just
// before the revocation committed (the relay now checks the device in the
// send transaction), and a relay that colludes with whoever holds the
// revoked key (clients now check the sender's revocations themselves).
func TestRevokedSenderDeviceRejected(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		alice, bob := newPerson(t), newPerson(t)
		cs := loggedIn(t, r.URL, alice, bob)
		ac, bc := cs[0], cs[1]
		if _, err := ac.SendDM(ctx, bob.addr(), "hi bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := bc.SendDM(ctx, alice.addr(), "before revocation"); err != nil {
			t.Fatal(err)
		}
		stolen := bc.Device()
		if err := later(t, r.URL, bob).RevokeDevice(ctx, stolen.Cert.Device); err != nil {
			t.Fatal(err)
		}
		dm := envelope.DMID(alice.addr(), bob.addr())
		conv := &envelope.Conversation{ID: dm, Kind: envelope.KindDM, Creator: alice.addr(), Epoch: 1,
			Members: envelope.SortMembers([]wallet.Address{alice.addr(), bob.addr()})}
		forge := func(text string) *envelope.Envelope {
			// Sent after the revocation.
			e, err := envelope.Seal(rand.Reader, stolen, conv, []envelope.DeviceCert{ac.Device().Cert}, []byte(text), time.Now().Add(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			return e
		}

		// A session that outlived the revocation (the race): the relay
		// refuses the device itself.
		tok := "race-" + strings.Repeat("x", 20)
		th := sha256.Sum256([]byte(tok))
		if _, err := db.Exec(ctx, `INSERT INTO relay_sessions (token_hash, wallet, device, expires) VALUES (?, ?, ?, ?)`,
			th[:], bob.addr().String(), stolen.Cert.Device, time.Now().Add(time.Hour).UnixMilli()); err != nil {
			t.Fatal(err)
		}
		status, msg, body := call(t, "POST", r.URL+"/v1/messages", tok, marshal(relayapi.SendRequest{Envelope: marshal(forge("through a stale session"))}))
		if status != 403 || reasonOf(body) != relayapi.ReasonDeviceRevoked {
			t.Fatalf("send by a revoked device: %d %q (%s), want 403 device_revoked", status, msg, reasonOf(body))
		}

		// A colluding relay delivers an envelope the revoked key signed.
		e := forge("sent with a revoked key")
		if _, err := db.Exec(ctx, `INSERT INTO relay_messages (id, conversation, sender, envelope, stored) VALUES (?, ?, ?, ?, ?)`,
			e.ID, dm, bob.addr().String(), marshal(e), time.Now().UnixMilli()); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO relay_deliveries (recipient, message, conversation, sender, folder) VALUES (?, ?, ?, ?, ?)`,
			alice.addr().String(), e.ID, dm, bob.addr().String(), relayapi.FolderInbox); err != nil {
			t.Fatal(err)
		}
		msgs, err := ac.ReadAll(ctx, chat.ReadOptions{Conversation: dm})
		if err != nil {
			t.Fatal(err)
		}
		got := texts(msgs)
		if len(got) != 3 || got[0] != "hi bob" || got[1] != "before revocation" ||
			!strings.HasPrefix(got[2], "ERR:envelope: sender device "+stolen.Cert.Device+" was revoked") {
			t.Fatalf("alice read %q: want the message from before the revocation and the later one rejected", got)
		}
	})
}

// Finding 10, for membership: with a creator's revoked device key and a
// colluding relay, a forged op adds Mallory to a group; members must not
// encrypt to her.
func TestRevokedDeviceCannotChangeGroup(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		alice, bob, mallory := newPerson(t), newPerson(t), newPerson(t)
		cs := loggedIn(t, r.URL, alice, bob, mallory)
		ac, bc := cs[0], cs[1]
		g, err := ac.CreateGroup(ctx, []wallet.Address{bob.addr()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bc.Send(ctx, g, "before"); err != nil {
			t.Fatal(err)
		}
		stolen := ac.Device()
		if err := later(t, r.URL, alice).RevokeDevice(ctx, stolen.Cert.Device); err != nil {
			t.Fatal(err)
		}
		op := &envelope.Op{Conversation: g, Kind: envelope.KindGroup, Epoch: 2, Creator: alice.addr(),
			Members: envelope.SortMembers([]wallet.Address{alice.addr(), bob.addr(), mallory.addr()}), At: time.Now().Add(2 * time.Second).UnixMilli()}
		op.Sign(stolen)
		next := &envelope.Conversation{ID: g, Kind: op.Kind, Creator: op.Creator, Epoch: 2, Members: op.Members}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO relay_ops (conversation, epoch, op) VALUES (?, ?, ?)`, []any{g, 2, marshal(op)}},
			{`UPDATE relay_conversations SET epoch = 2, members_hash = ? WHERE id = ?`, []any{next.MembersHash(), g}},
			{`INSERT INTO relay_members (conversation, wallet, current) VALUES (?, ?, 1)`, []any{g, mallory.addr().String()}},
		} {
			if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := bc.Send(ctx, g, "secret"); err == nil || !strings.Contains(err.Error(), "after its revocation") {
			t.Fatalf("bob sending after a forged op: %v, want a refusal naming the revocation", err)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM relay_messages WHERE conversation = ?`, g); n != 1 {
			t.Fatalf("%d messages in the group, want 1 (nothing sealed to the forged membership)", n)
		}
	})
}

// Finding 14: relay errors carry stable reason codes and the client
// branches on them (a replayed message is not resent as a membership race;
// an ended session signs in again).
func TestClientErrorsCarryReasonCodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		alice, bob := newPerson(t), newPerson(t)
		cs := loggedIn(t, r.URL, alice, bob)
		ac := cs[0]
		if _, err := ac.SendDM(ctx, bob.addr(), "first"); err != nil {
			t.Fatal(err)
		}
		conv := &envelope.Conversation{ID: envelope.DMID(alice.addr(), bob.addr()), Kind: envelope.KindDM, Creator: alice.addr(), Epoch: 1,
			Members: envelope.SortMembers([]wallet.Address{alice.addr(), bob.addr()})}
		e, err := envelope.Seal(rand.Reader, ac.Device(), conv, nil, []byte("once"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ac.Post(ctx, e); err != nil {
			t.Fatal(err)
		}
		_, err = ac.Post(ctx, e)
		var ae *chat.APIError
		if !errors.As(err, &ae) || ae.Status != 409 || ae.Reason != relayapi.ReasonReplay || !chat.IsReason(err, relayapi.ReasonReplay) {
			t.Fatalf("replayed post: %#v", err)
		}
		// Sessions gone (as after a revocation elsewhere or expiry): the
		// client signs in again on session_expired.
		if _, err := db.Exec(ctx, `DELETE FROM relay_sessions`); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ac.Conversations(ctx); err != nil {
			t.Fatalf("after the session ended: %v", err)
		}
		// Sealed for a stale epoch: the relay says epoch_changed.
		stale := *conv
		stale.Epoch = 2
		e2, _ := envelope.Seal(rand.Reader, ac.Device(), &stale, nil, []byte("stale"), time.Now())
		if _, err := ac.Post(ctx, e2); !chat.IsReason(err, relayapi.ReasonEpochChanged) {
			t.Fatalf("stale epoch: %v", err)
		}
	})
}
