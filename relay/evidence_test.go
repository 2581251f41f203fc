package relay_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/relay/relaytest"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json"
)

// TestDeviceEvidence: a device publishes evidence with its certificate at
// sign-in and may refresh it under the certificate its wallet signed (an
// agent restarted); the directory serves the latest, and a sign-in without
// evidence keeps it. Any other change to a
// registered certificate is a conflict, evidence that is not a JSON object
// is refused, and evidence up to envelope.MaxDeviceEvidence fits a sign-in.
// What the evidence says is the members' clients' to verify (chat, agentapi).
func TestDeviceEvidence(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := relaytest.Start(t, db, relay.Options{DefaultDifficulty: testBits})
		domain := strings.TrimPrefix(r.URL, "http://")
		w, _ := wallet.Generate(rand.Reader)
		d, _ := envelope.NewDevice(rand.Reader, w, time.Now())
		login := func(ev string) (int, string, string) {
			t.Helper()
			d.Cert.Evidence = nil
			if ev != "" {
				d.Cert.Evidence = []byte(ev)
			}
			status, msg, body := call(t, "POST", r.URL+"/v1/auth/login", "", loginRequest(t, r.URL, domain, w, d, nil))
			return status, msg, reasonOf(body)
		}
		published := func() string {
			t.Helper()
			status, msg, body := call(t, "GET", r.URL+relayapi.PathUsers+"/"+w.Address().String(), token(t, r.URL, domain, w, d), nil)
			if status != 200 {
				t.Fatalf("directory: %d %s", status, msg)
			}
			var u relayapi.UserResponse
			if err := json.Unmarshal(body, &u); err != nil || len(u.Devices) != 1 {
				t.Fatalf("directory: %v, %d devices", err, len(u.Devices))
			}
			return string(u.Devices[0].Evidence)
		}
		if status, msg, _ := login(""); status != 200 {
			t.Fatalf("sign-in without evidence: %d %s", status, msg)
		}
		for _, ev := range []string{`{"n":1}`, `{"n":2}`} {
			if status, msg, _ := login(ev); status != 200 {
				t.Fatalf("sign-in with evidence %s: %d %s", ev, status, msg)
			}
			if got := published(); got != ev {
				t.Fatalf("directory shows evidence %q, want %q", got, ev)
			}
		}
		// Another client of the device signs in without evidence: the
		// published evidence stays.
		if status, msg, _ := login(""); status != 200 || published() != `{"n":2}` {
			t.Fatalf("sign-in without evidence: %d %s, directory shows %q", status, msg, published())
		}
		big := `{"x":"` + strings.Repeat("a", envelope.MaxDeviceEvidence-8) + `"}`
		if status, msg, _ := login(big); status != 200 {
			t.Fatalf("sign-in with %d bytes of evidence: %d %s", len(big), status, msg)
		}
		for name, tc := range map[string]struct {
			ev     string
			status int
			reason string
		}{
			"evidence not an object": {`[1]`, 400, relayapi.ReasonBadDevice},
			"evidence over the cap":  {`{"x":"` + strings.Repeat("a", envelope.MaxDeviceEvidence) + `"}`, 400, relayapi.ReasonBadDevice},
		} {
			if status, msg, reason := login(tc.ev); status != tc.status || reason != tc.reason {
				t.Errorf("%s: %d %s (%s), want %d %s", name, status, msg, reason, tc.status, tc.reason)
			}
		}
		// The same device id with another certificate (re-signed with a new
		// creation time) is not a refresh.
		d.Cert.Created++
		d.Cert.Sig = w.Sign([]byte(d.Cert.Message()))
		if status, msg, reason := login(`{"n":3}`); status != 409 || reason != relayapi.ReasonDeviceConflict {
			t.Errorf("changed certificate: %d %s (%s), want 409 %s", status, msg, reason, relayapi.ReasonDeviceConflict)
		}
		var n int
		db.QueryRow(context.Background(), `SELECT COUNT(*) FROM relay_devices`).Scan(&n)
		if n != 1 {
			t.Errorf("%d devices stored, want 1", n)
		}
	})
}
