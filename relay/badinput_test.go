package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/relay/relaytest"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json"
)

// call sends a raw request and returns the status and error message.
func call(t *testing.T, method, url, token string, body []byte) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e relayapi.Error
	json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error, b
}

// reasonOf is the reason code of an error body ("" if none).
func reasonOf(body []byte) string {
	var e relayapi.Error
	json.Unmarshal(body, &e)
	return e.Reason
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// loginRequest builds a signed sign-in for a fresh nonce; mutate may alter
// the message before signing.
func loginRequest(t *testing.T, url, domain string, w *wallet.Keypair, d *envelope.Device, mutate func(*wallet.SignInMessage)) []byte {
	t.Helper()
	_, _, b := call(t, "POST", url+"/v1/auth/nonce", "", nil)
	var nr relayapi.NonceResponse
	if err := json.Unmarshal(b, &nr); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m := wallet.SignInMessage{Domain: domain, Address: w.Address(), Statement: "Sign in", URI: url, Version: "1",
		ChainID: nr.ChainID, Nonce: nr.Nonce, IssuedAt: now, ExpirationTime: now.Add(time.Minute)}
	if mutate != nil {
		mutate(&m)
	}
	text := m.String()
	return marshal(relayapi.LoginRequest{Message: text, Signature: w.Sign([]byte(text)), Device: d.Cert})
}

func token(t *testing.T, url, domain string, w *wallet.Keypair, d *envelope.Device) string {
	t.Helper()
	status, msg, b := call(t, "POST", url+"/v1/auth/login", "", loginRequest(t, url, domain, w, d, nil))
	if status != 200 {
		t.Fatalf("login: %d %s", status, msg)
	}
	var lr relayapi.LoginResponse
	json.Unmarshal(b, &lr)
	return lr.Token
}

func TestSignInRejects(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		domain := strings.TrimPrefix(r.URL, "http://")
		w, _ := wallet.Generate(rand.Reader)
		other, _ := wallet.Generate(rand.Reader)
		d, _ := envelope.NewDevice(rand.Reader, w, time.Now())
		od, _ := envelope.NewDevice(rand.Reader, other, time.Now())

		good := loginRequest(t, r.URL, domain, w, d, nil)
		if status, msg, _ := call(t, "POST", r.URL+"/v1/auth/login", "", good); status != 200 {
			t.Fatalf("valid sign-in: %d %s", status, msg)
		}
		wrongSig := loginRequest(t, r.URL, domain, w, d, nil)
		var lr relayapi.LoginRequest
		json.Unmarshal(wrongSig, &lr)
		lr.Signature[0] ^= 1
		tests := []struct {
			name   string
			body   []byte
			status int
			want   string
			reason string
		}{
			{"replayed sign-in", good, 401, "nonce unknown, expired or already used", relayapi.ReasonNonceInvalid},
			{"wrong signature", marshal(lr), 401, "wallet signature does not verify", relayapi.ReasonBadSignature},
			{"other domain", loginRequest(t, r.URL, "evil.example", w, d, nil), 401, "domain", relayapi.ReasonWrongDomain},
			{"made-up nonce", loginRequest(t, r.URL, domain, w, d, func(m *wallet.SignInMessage) { m.Nonce = "0123456789abcdef" }), 401, "nonce unknown", relayapi.ReasonNonceInvalid},
			{"expired", loginRequest(t, r.URL, domain, w, d, func(m *wallet.SignInMessage) {
				m.IssuedAt = time.Now().Add(-time.Hour)
				m.ExpirationTime = m.IssuedAt.Add(time.Minute)
			}), 401, "outside the accepted window", relayapi.ReasonIssuedAt},
			{"no expiration", loginRequest(t, r.URL, domain, w, d, func(m *wallet.SignInMessage) { m.ExpirationTime = time.Time{} }), 401, "expiration time are required", relayapi.ReasonNoTimes},
			{"device of another wallet", loginRequest(t, r.URL, domain, w, od, nil), 401, "another wallet", relayapi.ReasonDeviceWallet},
			{"malformed message", marshal(relayapi.LoginRequest{Message: "hello", Signature: []byte{1}, Device: d.Cert}), 400, "first line", relayapi.ReasonBadSignIn},
			{"unknown field", []byte(`{"message":"x","signature":"","device":{},"admin":true}`), 400, "malformed request", relayapi.ReasonBadRequest},
			{"oversized", bytes.Repeat([]byte(" "), relayapi.MaxLoginBody+1), 413, "larger than", relayapi.ReasonTooLarge},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, msg, body := call(t, "POST", r.URL+"/v1/auth/login", "", tt.body)
				if status != tt.status || !strings.Contains(msg, tt.want) || reasonOf(body) != tt.reason {
					t.Fatalf("got %d %q (%s), want %d %q (%s)", status, msg, reasonOf(body), tt.status, tt.want, tt.reason)
				}
			})
		}
		var n int
		db.QueryRow(context.Background(), `SELECT COUNT(*) FROM relay_sessions`).Scan(&n)
		if n != 1 {
			t.Fatalf("%d sessions stored, want 1 (only the valid sign-in)", n)
		}
		if status, _, _ := call(t, "GET", r.URL+"/v1/devices", "bogus", nil); status != 401 {
			t.Fatalf("bogus token: %d", status)
		}
	})
}

func TestSendRejects(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		domain := strings.TrimPrefix(r.URL, "http://")
		aw, _ := wallet.Generate(rand.Reader)
		bw, _ := wallet.Generate(rand.Reader)
		ad, _ := envelope.NewDevice(rand.Reader, aw, time.Now())
		bd, _ := envelope.NewDevice(rand.Reader, bw, time.Now())
		atok := token(t, r.URL, domain, aw, ad)
		token(t, r.URL, domain, bw, bd)

		members := envelope.SortMembers([]wallet.Address{aw.Address(), bw.Address()})
		op := &envelope.Op{Conversation: envelope.DMID(aw.Address(), bw.Address()), Kind: envelope.KindDM, Epoch: 1,
			Creator: aw.Address(), Members: members, At: time.Now().UnixMilli()}
		op.Sign(ad)
		if status, msg, _ := call(t, "POST", r.URL+"/v1/conversations", atok, marshal(relayapi.OpRequest{Op: *op})); status != 201 {
			t.Fatalf("create: %d %s", status, msg)
		}
		conv, _ := envelope.Apply(nil, op)
		seal := func(c *envelope.Conversation) *envelope.Envelope {
			e, err := envelope.Seal(rand.Reader, ad, c, []envelope.DeviceCert{bd.Cert}, []byte("hi"), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		stampFor := func(e *envelope.Envelope, bits int) map[string]stamp.Stamp {
			in := stamp.Input{Recipient: bw.Address(), Sender: aw.Address(), Message: e.Hash()}
			// Find a counter with exactly `bits` bits of work, so it is below
			// bits+1.
			for i := uint64(0); ; i++ {
				st := stamp.Stamp{Kind: stamp.KindPoW, Proof: []byte{0, 0, 0, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}}
				if (stamp.PoW{}).Verify(ctx, &st, in, stamp.Requirement{Bits: bits}) == nil &&
					(stamp.PoW{}).Verify(ctx, &st, in, stamp.Requirement{Bits: bits + 1}) != nil {
					return map[string]stamp.Stamp{bw.Address().String(): st}
				}
			}
		}
		send := func(e *envelope.Envelope, stamps map[string]stamp.Stamp) []byte {
			return marshal(relayapi.SendRequest{Envelope: marshal(e), Stamps: stamps})
		}
		tampered := seal(conv)
		tampered.Ciphertext[0] ^= 1
		unknown := *conv
		unknown.ID = strings.Repeat("ab", 16)
		stale, err := envelope.Seal(rand.Reader, ad, conv, []envelope.DeviceCert{bd.Cert}, []byte("hi"), time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		forgedCert := seal(conv)
		forgedCert.Sender.Wallet = bw.Address()
		byOther := seal(conv)
		withStamp := seal(conv)
		big := seal(conv)
		big.Ciphertext = make([]byte, envelope.MaxPlaintext+17)

		tests := []struct {
			name   string
			body   []byte
			status int
			want   string
			reason string
		}{
			{"malformed JSON", []byte(`{"envelope":`), 400, "malformed request", relayapi.ReasonBadRequest},
			{"no envelope", []byte(`{}`), 400, "no envelope", relayapi.ReasonBadRequest},
			{"malformed envelope", []byte(`{"envelope":{"v":1}}`), 400, "envelope", relayapi.ReasonBadEnvelope},
			{"oversized body", bytes.Repeat([]byte(" "), relayapi.MaxSendBody+1), 413, "larger than", relayapi.ReasonTooLarge},
			{"oversized message", send(big, nil), 400, "ciphertext length", relayapi.ReasonBadEnvelope},
			{"wrong signature", send(tampered, nil), 400, "signature does not verify", relayapi.ReasonBadEnvelope},
			{"forged device certificate", send(forgedCert, nil), 400, "wallet signature does not verify", relayapi.ReasonBadEnvelope},
			{"stale envelope time", send(stale, nil), 400, "from the relay's clock", relayapi.ReasonClockSkew},
			{"unknown conversation", send(seal(&unknown), nil), 404, "unknown conversation", relayapi.ReasonUnknownConversation},
			{"no stamp", send(seal(conv), nil), 402, "stamp required", relayapi.ReasonStampRequired},
			{"stamp below difficulty", send(withStamp, stampFor(withStamp, testBits-1)), 402, "below the recipient's difficulty", relayapi.ReasonStampRejected},
			{"stamp for another message", send(byOther, stampFor(withStamp, testBits)), 402, "stamp for", relayapi.ReasonStampRejected},
			{"unknown stamp kind", send(seal(conv), map[string]stamp.Stamp{bw.Address().String(): {Kind: "gold", Proof: []byte{1}}}), 400, "unknown stamp kind", relayapi.ReasonBadStamp},
			{"x402 not configured", send(seal(conv), map[string]stamp.Stamp{bw.Address().String(): {Kind: stamp.KindX402, Proof: []byte{1}}}), 402, "not accepted", relayapi.ReasonStampKind},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, msg, body := call(t, "POST", r.URL+"/v1/messages", atok, tt.body)
				if status != tt.status || !strings.Contains(msg, tt.want) || reasonOf(body) != tt.reason {
					t.Fatalf("got %d %q (%s), want %d %q (%s)", status, msg, reasonOf(body), tt.status, tt.want, tt.reason)
				}
			})
		}
		var n int
		db.QueryRow(ctx, `SELECT COUNT(*) FROM relay_messages`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d messages stored after rejected sends, want 0", n)
		}
		// A valid stamp is accepted once; the same envelope again is a replay.
		ok := seal(conv)
		body := send(ok, stampFor(ok, testBits))
		if status, msg, _ := call(t, "POST", r.URL+"/v1/messages", atok, body); status != 201 {
			t.Fatalf("valid send: %d %s", status, msg)
		}
		if status, msg, b := call(t, "POST", r.URL+"/v1/messages", atok, body); status != 409 || reasonOf(b) != relayapi.ReasonReplay {
			t.Fatalf("replayed send: %d %s", status, msg)
		}
		// Other endpoints' rejection paths.
		for _, tt := range []struct {
			method, path string
			body         []byte
			status       int
			want         string
			reason       string
		}{
			{"GET", "/v1/messages?limit=0", nil, 400, "limit", relayapi.ReasonBadRequest},
			{"GET", "/v1/messages?after=-1", nil, 400, "cursor", relayapi.ReasonBadRequest},
			{"GET", "/v1/messages?folder=spam", nil, 400, "folder", relayapi.ReasonBadRequest},
			{"GET", "/v1/conversations/" + strings.Repeat("cd", 16), nil, 404, "unknown conversation", relayapi.ReasonUnknownConversation},
			{"GET", "/v1/conversations/xyz", nil, 400, "hex", relayapi.ReasonBadID},
			{"GET", "/v1/users/notanaddress", nil, 400, "invalid wallet address", relayapi.ReasonBadAddress},
			{"PUT", "/v1/settings", []byte(`{"difficulty":99}`), 400, "out of range", relayapi.ReasonBadDifficulty},
			{"PUT", "/v1/consent", []byte(`{"update":{}}`), 400, "consent", relayapi.ReasonBadConsent},
			{"POST", "/v1/devices/revoke", marshal(relayapi.RevokeRequest{Revocation: *envelope.NewRevocation(bw, bd.Cert.Device, time.Now())}), 403, "another wallet", relayapi.ReasonRevocationOther},
			{"POST", "/v1/conversations", marshal(relayapi.OpRequest{Op: *op}), 409, "already exists", relayapi.ReasonConversationExists},
			{"GET", "/v1/nothing", nil, 404, "no such endpoint", relayapi.ReasonNoEndpoint},
		} {
			t.Run(tt.method+" "+tt.path, func(t *testing.T) {
				status, msg, body := call(t, tt.method, r.URL+tt.path, atok, tt.body)
				if status != tt.status || !strings.Contains(msg, tt.want) || reasonOf(body) != tt.reason {
					t.Fatalf("got %d %q (%s), want %d %q (%s)", status, msg, reasonOf(body), tt.status, tt.want, tt.reason)
				}
			})
		}
	})
}
