package gwclient

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/internal/wire"
)

func TestPins(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	sum := sha256.Sum256(srv.Certificate().RawSubjectPublicKeyInfo)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		pins    string
		wantErr bool
	}{
		{"pinned", write("ok.json", `{"spki_sha256": ["00", "`+hex.EncodeToString(sum[:])+`"]}`), false},
		{"not pinned", write("other.json", `{"spki_sha256": ["`+hex.EncodeToString(make([]byte, 32))+`"]}`), true},
		{"unknown field", write("bad.json", `{"spki_sha256": [], "x": 1}`), true},
		{"missing file", filepath.Join(dir, "nope.json"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := (&Trust{PinsFile: tt.pins}).TLSConfig()
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			resp, err := c.Get(srv.URL)
			if err == nil {
				resp.Body.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	if _, err := (&Trust{}).TLSConfig(); !errors.Is(err, ErrNoTrust) {
		t.Errorf("empty Trust: err = %v, want ErrNoTrust", err)
	}
}

// credentialKey is gatewayapi.CredentialKey with its base64 members as
// strings, so that cases can corrupt them.
type credentialKey struct {
	KEM       string `json:"kem"`
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"`
}

// verifyWire decodes k as FetchCredentialKey does, then verifies it.
func verifyWire(k *credentialKey, c *x509.Certificate) (hpke.PublicKey, error) {
	b, err := json.Marshal(k)
	if err != nil {
		return nil, err
	}
	var ck gatewayapi.CredentialKey
	if err := wire.Decode(b, &ck); err != nil {
		return nil, err
	}
	return verifyCredentialKey(&ck, c)
}

func TestCredentialKey(t *testing.T) {
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := &x509.Certificate{PublicKey: &certKey.PublicKey}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	pub := priv.PublicKey().Bytes()
	sign := func(k *ecdsa.PrivateKey, msg []byte) string {
		d := sha256.Sum256(append([]byte(gatewayapi.CredentialKeyContext), msg...))
		s, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
		return base64.StdEncoding.EncodeToString(s)
	}
	good := credentialKey{KEM: CredentialKEM, PublicKey: base64.StdEncoding.EncodeToString(pub), Signature: sign(certKey, pub)}
	tests := []struct {
		name string
		edit func(*credentialKey, *x509.Certificate)
		ok   bool
	}{
		{"valid", func(*credentialKey, *x509.Certificate) {}, true},
		{"other KEM", func(k *credentialKey, _ *x509.Certificate) { k.KEM = "DHKEM(P-256, HKDF-SHA256)" }, false},
		{"signed by another key", func(k *credentialKey, _ *x509.Certificate) { k.Signature = sign(otherKey, pub) }, false},
		{"key swapped", func(k *credentialKey, _ *x509.Certificate) {
			p2, _ := ecdh.X25519().GenerateKey(rand.Reader)
			k.PublicKey = base64.StdEncoding.EncodeToString(p2.PublicKey().Bytes())
		}, false},
		{"bad base64", func(k *credentialKey, _ *x509.Certificate) { k.PublicKey = "!" }, false},
		{"bad signature base64", func(k *credentialKey, _ *x509.Certificate) { k.Signature = "!" }, false},
		{"short key", func(k *credentialKey, _ *x509.Certificate) {
			k.PublicKey = base64.StdEncoding.EncodeToString(pub[:31])
			k.Signature = sign(certKey, pub[:31])
		}, false},
		{"non-ECDSA certificate", func(_ *credentialKey, c *x509.Certificate) { c.PublicKey = edPub }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, c := good, *cert
			tt.edit(&k, &c)
			hk, err := verifyWire(&k, &c)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			// Round trip: what the client seals, the holder of priv opens,
			// only with the same token id.
			sealed, err := SealCredentials(hk, "tok1", map[string]string{"GITHUB_TOKEN": "s3cret"})
			if err != nil {
				t.Fatal(err)
			}
			hpriv, _ := hpke.NewDHKEMPrivateKey(priv)
			r, err := hpke.NewRecipient(sealed.Enc, hpriv, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(gatewayapi.CredentialInfoContext+"tok1"))
			if err != nil {
				t.Fatal(err)
			}
			pt, err := r.Open(nil, sealed.Ciphertext)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]string
			if json.Unmarshal(pt, &got); got["GITHUB_TOKEN"] != "s3cret" {
				t.Errorf("opened %s", pt)
			}
			r2, _ := hpke.NewRecipient(sealed.Enc, hpriv, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(gatewayapi.CredentialInfoContext+"tok2"))
			if _, err := r2.Open(nil, sealed.Ciphertext); err == nil {
				t.Error("ciphertext opened under another token id")
			}
		})
	}
}

func TestAdminErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer admin" {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"bad admin token","reason":"unauthorized"}`))
			return
		}
		switch r.URL.Path {
		case "/admin/v1/approvals/x/approve":
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"no such approval","reason":"not pending"}`))
		case "/admin/v1/tools/t/approve":
			// An answer from something other than a gateway: no reason.
			w.WriteHeader(502)
			w.Write([]byte(`<html>bad gateway</html>`))
		case "/admin/v1/tokens":
			w.Write([]byte(`{"id":"ab","token":"cmt1.x","expires":"2026-01-01T00:00:00Z","extra":1}`))
		}
	}))
	defer srv.Close()
	a := &Admin{BaseURL: srv.URL, Token: "admin", HTTP: srv.Client()}
	ctx := context.Background()
	if err := a.Decide(ctx, "x", true); !IsReason(err, gatewayapi.ReasonNotPending) {
		t.Errorf("Decide unknown: err = %v, want reason %q", err, gatewayapi.ReasonNotPending)
	}
	if err := a.ApproveTool(ctx, "t", "00"); !IsReason(err, ReasonHTTP) {
		t.Errorf("error without a reason code: %v, want reason %q", err, ReasonHTTP)
	}
	if _, ok := ReasonOf(errors.New("not from the gateway")); ok {
		t.Error("ReasonOf found a reason in a local error")
	}
	if m, err := a.Mint(ctx, MintRequest{Tools: []string{"*"}}); err != nil || m.ID != "ab" {
		t.Errorf("Mint = %+v, %v (a newer gateway's extra fields must be ignored)", m, err)
	}
	if _, err := a.Info(ctx); err == nil {
		t.Error("Info accepted an empty body")
	}
	bad := &Admin{BaseURL: srv.URL, Token: "nope", HTTP: srv.Client()}
	var he *HTTPError
	if err := bad.Revoke(ctx, "id"); !errors.As(err, &he) || he.Status != 401 || he.Reason != gatewayapi.ReasonUnauthorized || he.Msg != "bad admin token" {
		t.Errorf("Revoke with bad token: %v", err)
	}
}
