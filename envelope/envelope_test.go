package envelope

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json"
)

var now = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

type user struct {
	w       *wallet.Keypair
	devices []*Device
}

func newUser(t testing.TB, ndev int) *user {
	t.Helper()
	w, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u := &user{w: w}
	for i := 0; i < ndev; i++ {
		d, err := NewDevice(rand.Reader, w, now)
		if err != nil {
			t.Fatal(err)
		}
		u.devices = append(u.devices, d)
	}
	return u
}

func (u *user) certs() []DeviceCert {
	var c []DeviceCert
	for _, d := range u.devices {
		c = append(c, d.Cert)
	}
	return c
}

func group(t testing.TB, creator *user, members ...*user) (*Conversation, *Op) {
	t.Helper()
	var addrs []wallet.Address
	for _, m := range members {
		addrs = append(addrs, m.w.Address())
	}
	op, err := NewGroupOp(rand.Reader, creator.w.Address(), addrs, now)
	if err != nil {
		t.Fatal(err)
	}
	op.Sign(creator.devices[0])
	c, err := Apply(nil, op)
	if err != nil {
		t.Fatal(err)
	}
	return c, op
}

func TestSealOpen(t *testing.T) {
	alice, bob, carol := newUser(t, 2), newUser(t, 1), newUser(t, 1)
	conv, _ := group(t, alice, bob)
	e, err := Seal(rand.Reader, alice.devices[0], conv, append(alice.certs(), bob.certs()...), []byte("hello bob"), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Keys) != 3 {
		t.Fatalf("%d wrapped keys, want 3 (two of alice's devices, bob's)", len(e.Keys))
	}
	for _, d := range []*Device{bob.devices[0], alice.devices[1], alice.devices[0]} {
		pt, err := Open(e, d, conv)
		if err != nil || string(pt) != "hello bob" {
			t.Fatalf("Open = %q, %v", pt, err)
		}
	}
	if _, err := Open(e, carol.devices[0], conv); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("non-member Open error = %v", err)
	}
	// Round trip through the wire format.
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := Open(e2, bob.devices[0], conv); err != nil || string(pt) != "hello bob" {
		t.Fatalf("Open after Parse = %q, %v", pt, err)
	}
	if _, err := Seal(rand.Reader, alice.devices[0], conv, carol.certs(), []byte("x"), now); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("sealing to a non-member device: %v", err)
	}
	if _, err := Seal(rand.Reader, carol.devices[0], conv, nil, []byte("x"), now); err == nil {
		t.Fatal("non-member sealed")
	}
	if _, err := Seal(rand.Reader, alice.devices[0], conv, nil, make([]byte, MaxPlaintext+1), now); err == nil {
		t.Fatal("oversized plaintext sealed")
	}
}

func TestOpenRejectsTampering(t *testing.T) {
	alice, bob, mallory := newUser(t, 1), newUser(t, 1), newUser(t, 1)
	conv, _ := group(t, alice, bob)
	fresh := func() *Envelope {
		e, err := Seal(rand.Reader, alice.devices[0], conv, bob.certs(), []byte("secret"), now)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// A certificate for mallory's device claiming alice's wallet.
	forgedCert := mallory.devices[0].Cert
	forgedCert.Wallet = alice.w.Address()
	tests := []struct {
		name   string
		mutate func(e *Envelope)
		want   string
	}{
		{"ciphertext", func(e *Envelope) { e.Ciphertext[0] ^= 1 }, "signature does not verify"},
		{"wrapped key", func(e *Envelope) { e.Keys[0].Key[40] ^= 1 }, "signature does not verify"},
		{"time", func(e *Envelope) { e.SentAt++ }, "signature does not verify"},
		{"signature", func(e *Envelope) { e.Sig[0] ^= 1 }, "signature does not verify"},
		{"forged sender certificate", func(e *Envelope) { e.Sender = forgedCert }, "wallet signature does not verify"},
		{"re-signed by another device", func(e *Envelope) {
			e.Sender = mallory.devices[0].Cert
			e.Sig = signWith(mallory.devices[0], e)
		}, "not a member"},
		{"other epoch", func(e *Envelope) { e.Epoch = 2; e.Sig = signWith(alice.devices[0], e) }, "epoch does not match"},
		{"members hash", func(e *Envelope) { e.MembersHash[0] ^= 1; e.Sig = signWith(alice.devices[0], e) }, "members hash"},
		{"wrong key wrapped", func(e *Envelope) {
			e.Keys[0].Key, e.Keys[1].Key = e.Keys[1].Key, e.Keys[0].Key
			e.Sig = signWith(alice.devices[0], e)
		}, "does not open"},
		{"malformed", func(e *Envelope) { e.ID = "xyz" }, "32 lowercase hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fresh()
			tt.mutate(e)
			_, err := Open(e, bob.devices[0], conv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func signWith(d *Device, e *Envelope) []byte { return ed25519.Sign(d.sign, e.signed()) }

func TestMembership(t *testing.T) {
	alice, bob, carol := newUser(t, 1), newUser(t, 1), newUser(t, 1)
	conv, _ := group(t, alice, bob, carol)
	remove := &Op{Conversation: conv.ID, Kind: KindGroup, Epoch: 2, Creator: alice.w.Address(),
		Members: SortMembers([]wallet.Address{alice.w.Address(), bob.w.Address()}), At: now.UnixMilli()}
	remove.Sign(alice.devices[0])
	next, err := Apply(conv, remove)
	if err != nil {
		t.Fatal(err)
	}
	if next.IsMember(carol.w.Address()) || next.Epoch != 2 {
		t.Fatalf("after removal: %+v", next)
	}
	// After removal the sender wraps to the new list only: carol cannot open.
	e, err := Seal(rand.Reader, alice.devices[0], next, bob.certs(), []byte("after"), now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(e, carol.devices[0], conv); err == nil {
		t.Fatal("removed member opened a message sent after removal")
	}
	if _, err := Seal(rand.Reader, alice.devices[0], next, carol.certs(), []byte("after"), now); err == nil {
		t.Fatal("sealed to a removed member")
	}

	byBob := *remove
	byBob.Sign(bob.devices[0])
	dm := &Op{Conversation: DMID(alice.w.Address(), bob.w.Address()), Kind: KindDM, Epoch: 1, Creator: alice.w.Address(),
		Members: SortMembers([]wallet.Address{alice.w.Address(), bob.w.Address()}), At: now.UnixMilli()}
	dm.Sign(alice.devices[0])
	badDM := *dm
	badDM.Conversation = conv.ID
	badDM.Sign(alice.devices[0])
	unsorted := *remove
	unsorted.Members = []wallet.Address{remove.Members[1], remove.Members[0]}
	unsorted.Sign(alice.devices[0])
	skip := *remove
	skip.Epoch = 3
	skip.Sign(alice.devices[0])
	tampered := *remove
	tampered.Members = SortMembers([]wallet.Address{alice.w.Address()})
	// Squatting: carol creates a group at alice and bob's direct
	// conversation ID, with herself as a member, with and without a nonce.
	squat := Op{Conversation: DMID(alice.w.Address(), bob.w.Address()), Kind: KindGroup, Epoch: 1, Creator: carol.w.Address(),
		Members: SortMembers([]wallet.Address{alice.w.Address(), bob.w.Address(), carol.w.Address()}), At: now.UnixMilli()}
	squat.Sign(carol.devices[0])
	squatNonce := squat
	squatNonce.Nonce = make([]byte, GroupNonceSize)
	squatNonce.Sign(carol.devices[0])
	// A group claiming another creator's derived ID.
	_, aliceGroup := group(t, alice, bob)
	stolen := *aliceGroup
	stolen.Creator = carol.w.Address()
	stolen.Members = SortMembers([]wallet.Address{alice.w.Address(), bob.w.Address(), carol.w.Address()})
	stolen.Sign(carol.devices[0])
	dmThree := *dm
	dmThree.Members = squat.Members
	dmThree.Sign(alice.devices[0])
	nonceLater := *remove
	nonceLater.Nonce = make([]byte, GroupNonceSize)
	nonceLater.Sign(alice.devices[0])
	tests := []struct {
		name string
		cur  *Conversation
		op   *Op
		want string
	}{
		{"non-creator changes members", conv, &byBob, "only the group's creator"},
		{"dm with wrong ID", nil, &badDM, "conversation ID is not derived as its kind requires (direct"},
		{"group squatting a dm ID", nil, &squat, "needs a 16-byte nonce"},
		{"group with nonce squatting a dm ID", nil, &squatNonce, "conversation ID is not derived as its kind requires (group"},
		{"group claiming another creator's ID", nil, &stolen, "conversation ID is not derived as its kind requires (group"},
		{"dm with three members", nil, &dmThree, "exactly two members"},
		{"nonce on a later op", conv, &nonceLater, "only on a group's creating op"},
		{"unsorted members", conv, &unsorted, "not sorted"},
		{"skipped epoch", conv, &skip, "does not follow"},
		{"tampered op", conv, &tampered, "signature does not verify"},
		{"first op with epoch 2", nil, remove, "want 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Apply(tt.cur, tt.op)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
	dmConv, err := Apply(nil, dm)
	if err != nil {
		t.Fatal(err)
	}
	change := *dm
	change.Epoch = 2
	change.Sign(alice.devices[0])
	if _, err := Apply(dmConv, &change); err == nil || !strings.Contains(err.Error(), "cannot change") {
		t.Fatalf("changing a DM: %v", err)
	}
}

func TestDeviceCertAndRevocation(t *testing.T) {
	alice := newUser(t, 1)
	d := alice.devices[0]
	if _, err := wallet.ParseSignInMessage(d.Cert.Message()); err != nil {
		t.Fatalf("certificate text is not a Sign-In With Solana message: %v", err)
	}
	secret, err := d.MarshalSecret()
	if err != nil {
		t.Fatal(err)
	}
	d2, err := ParseDevice(secret)
	if err != nil || d2.Cert.Device != d.Cert.Device {
		t.Fatalf("ParseDevice: %v", err)
	}
	c := d.Cert
	c.HPKE = append([]byte(nil), c.HPKE...)
	c.HPKE[0] ^= 1
	if err := c.Verify(); err == nil {
		t.Fatal("certificate with swapped key verified")
	}
	r := NewRevocation(alice.w, d.Cert.Device, now)
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	r.Device = strings.Repeat("0", 32)
	if err := r.Verify(); err == nil {
		t.Fatal("altered revocation verified")
	}
	u := &ConsentUpdate{Peer: newUser(t, 0).w.Address(), State: Allowed, At: now.UnixMilli()}
	u.Sign(d)
	if err := u.Verify(); err != nil {
		t.Fatal(err)
	}
	u.State = Denied
	if err := u.Verify(); err == nil {
		t.Fatal("altered consent update verified")
	}
}

func FuzzParse(f *testing.F) {
	alice, bob := newUser(f, 1), newUser(f, 1)
	conv, _ := group(f, alice, bob)
	e, err := Seal(rand.Reader, alice.devices[0], conv, bob.certs(), []byte("hi"), now)
	if err != nil {
		f.Fatal(err)
	}
	data, _ := json.Marshal(e)
	f.Add(data)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			return
		}
		if pt, err := Open(e, bob.devices[0], conv); err == nil && string(pt) != "hi" {
			t.Fatalf("fuzzed envelope opened to %q", pt)
		}
	})
}

func FuzzParseDevice(f *testing.F) {
	d := newUser(f, 1).devices[0]
	secret, _ := d.MarshalSecret()
	f.Add(secret)
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := ParseDevice(b); err == nil {
			if err := d.Cert.Verify(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Benchmarks: sealing and opening an envelope for n member devices,
// against the primitives it is made of, measured in the same run.
func benchConv(b *testing.B, devices int) (*user, *Conversation, []DeviceCert) {
	alice := newUser(b, 1)
	var members []*user
	var certs []DeviceCert
	for i := 1; i < devices; i++ {
		u := newUser(b, 1)
		members = append(members, u)
		certs = append(certs, u.certs()...)
	}
	conv, _ := group(b, alice, members...)
	return alice, conv, certs
}

func BenchmarkSeal(b *testing.B) {
	for _, n := range []int{2, 50} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			alice, conv, certs := benchConv(b, n)
			msg := make([]byte, 1024)
			for b.Loop() {
				if _, err := Seal(rand.Reader, alice.devices[0], conv, certs, msg, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{2, 50} {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			alice, conv, certs := benchConv(b, n)
			e, err := Seal(rand.Reader, alice.devices[0], conv, certs, make([]byte, 1024), now)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Open(e, alice.devices[0], conv); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPrimitives(b *testing.B) {
	d := newUser(b, 1).devices[0]
	pk, _ := kem.NewPublicKey(d.Cert.HPKE)
	sk, _ := d.hpkePrivate()
	key := make([]byte, 32)
	b.Run("hpke-seal-32B", func(b *testing.B) {
		for b.Loop() {
			hpke.Seal(pk, kdf, aead, []byte("info"), key)
		}
	})
	ct, _ := hpke.Seal(pk, kdf, aead, []byte("info"), key)
	b.Run("hpke-open-32B", func(b *testing.B) {
		for b.Loop() {
			if _, err := hpke.Open(sk, kdf, aead, []byte("info"), ct); err != nil {
				b.Fatal(err)
			}
		}
	})
	g, _ := contentAEAD(key)
	msg := make([]byte, 1024)
	nonce := make([]byte, 12)
	b.Run("aes256gcm-seal-1KiB", func(b *testing.B) {
		for b.Loop() {
			g.Seal(nil, nonce, msg, nil)
		}
	})
	sealed := g.Seal(nil, nonce, msg, nil)
	b.Run("aes256gcm-open-1KiB", func(b *testing.B) {
		for b.Loop() {
			g.Open(nil, nonce, sealed, nil)
		}
	})
	sig := ed25519.Sign(d.sign, msg)
	b.Run("ed25519-verify", func(b *testing.B) {
		for b.Loop() {
			ed25519.Verify(d.Cert.Signing, msg, sig)
		}
	})
}
