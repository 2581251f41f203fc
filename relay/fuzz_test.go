package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json"
)

// FuzzRequests sends arbitrary bodies to every relay endpoint that decodes
// one. Whatever the input, the relay answers with a JSON error or success,
// never a 500, and never panics.
func FuzzRequests(f *testing.F) {
	db := storetest.SQLite(f)
	ts := httptest.NewUnstartedServer(nil)
	domain := ts.Listener.Addr().String()
	ts.Close()
	srv, err := relay.New(context.Background(), db, &relay.Options{Domain: domain, DefaultDifficulty: 1})
	if err != nil {
		f.Fatal(err)
	}
	w, _ := wallet.Generate(rand.Reader)
	d, _ := envelope.NewDevice(rand.Reader, w, time.Now())
	tok := fuzzLogin(f, srv, domain, w, d)
	endpoints := []struct{ method, path string }{
		{"POST", "/v1/auth/login"},
		{"POST", "/v1/messages"},
		{"POST", "/v1/conversations"},
		{"POST", "/v1/conversations/" + envelope.DMID(w.Address(), w.Address()) + "/ops"},
		{"PUT", "/v1/consent"},
		{"PUT", "/v1/settings"},
		{"POST", "/v1/devices/revoke"},
	}
	u := &envelope.ConsentUpdate{Peer: w.Address(), State: envelope.Allowed, At: 1}
	u.Sign(d)
	seeds := [][]byte{
		[]byte(`{}`), []byte(`{"difficulty":3}`), []byte(`{"envelope":{"v":1}}`),
		mustJSON(relayapi.ConsentRequest{Update: *u}),
		mustJSON(relayapi.RevokeRequest{Revocation: *envelope.NewRevocation(w, d.Cert.Device, time.Now())}),
	}
	for i := range endpoints {
		for _, s := range seeds {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		e := endpoints[int(which)%len(endpoints)]
		req := httptest.NewRequest(e.method, e.path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s with %q: status %d %s", e.method, e.path, body, rec.Code, rec.Body)
		}
		var resp map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("response is not JSON: %q", rec.Body)
		}
		if rec.Code >= 400 && (resp["error"] == nil || resp["reason"] == nil || resp["reason"] == "") {
			t.Fatalf("error response without a message or reason code: %q", rec.Body)
		}
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func fuzzLogin(f *testing.F, srv http.Handler, domain string, w *wallet.Keypair, d *envelope.Device) string {
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/auth/nonce", nil))
	var nr relayapi.NonceResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &nr); err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	m := wallet.SignInMessage{Domain: domain, Address: w.Address(), Version: "1", ChainID: nr.ChainID, Nonce: nr.Nonce,
		IssuedAt: now, ExpirationTime: now.Add(time.Minute)}
	body := mustJSON(relayapi.LoginRequest{Message: m.String(), Signature: w.Sign([]byte(m.String())), Device: d.Cert})
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/auth/login", bytes.NewReader(body)))
	var lr relayapi.LoginResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &lr); err != nil || lr.Token == "" {
		f.Fatalf("login: %s", rec.Body)
	}
	return lr.Token
}
