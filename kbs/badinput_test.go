package kbs

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/kbsapi"
	"github.com/chatmcp/chatmcp/kbsclient"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/google/go-cmp/cmp"
)

// snapshot is the observable state a bad request must not change.
type snapshot struct {
	list   []kbsapi.SecretInfo
	audit  []byte
	nonces int
}

func (e *env) snapshot() snapshot {
	e.t.Helper()
	list, err := e.admin.List(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(e.logDir, "audit.jsonl"))
	var n int
	e.db.QueryRow(context.Background(), `SELECT COUNT(*) FROM kbs_nonces`).Scan(&n)
	return snapshot{list: list, audit: b, nonces: n}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, storetest.SQLite(t), nil)
	if _, err := e.admin.Put(ctx, "s", []byte("value"), simPolicy(measA)); err != nil {
		t.Fatal(err)
	}
	big := `{"secret":"s","tee":"sim","x":"` + strings.Repeat("a", kbsapi.MaxAttestBody) + `"}`
	putBody := func(extra string) string {
		b, _ := json.Marshal(kbsapi.PutRequest{Value: []byte("new"), Policy: simPolicy(measA)})
		return strings.TrimSuffix(string(b), "}") + extra + "}"
	}
	tests := []struct {
		name, method, path, token, body string
		status                          int
		reason                          string
	}{
		{"malformed JSON", "POST", kbsapi.PathRequest, "", `{"secret":`, 400, kbsapi.ReasonMalformed},
		{"trailing data", "POST", kbsapi.PathRequest, "", `{"secret":"s","tee":"sim"} {}`, 400, kbsapi.ReasonMalformed},
		{"unknown field", "POST", kbsapi.PathRequest, "", `{"secret":"s","tee":"sim","admin":true}`, 400, kbsapi.ReasonMalformed},
		{"duplicate field", "POST", kbsapi.PathRequest, "", `{"secret":"s","secret":"t","tee":"sim"}`, 400, kbsapi.ReasonMalformed},
		{"oversized request", "POST", kbsapi.PathRequest, "", big, 413, kbsapi.ReasonTooLarge},
		{"oversized attest", "POST", kbsapi.PathAttest, "", big, 413, kbsapi.ReasonTooLarge},
		{"unknown TEE", "POST", kbsapi.PathRequest, "", `{"secret":"s","tee":"sgx"}`, 400, kbsapi.ReasonUnknownTEE},
		{"bad secret name", "POST", kbsapi.PathRequest, "", `{"secret":"../etc","tee":"sim"}`, 400, kbsapi.ReasonMalformed},
		{"attest without evidence", "POST", kbsapi.PathAttest, "", `{"secret":"s","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`, 400, kbsapi.ReasonMalformed},
		{"attest short nonce", "POST", kbsapi.PathAttest, "", `{"secret":"s","nonce":"AAAA","public_key":"AAAA"}`, 400, kbsapi.ReasonMalformed},
		{"attest unknown TEE", "POST", kbsapi.PathAttest, "", `{"secret":"s","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","public_key":"` + b64(newHPKEPub(t)) + `","evidence":{"version":1,"tee":"sgx","report":"AA=="}}`, 400, kbsapi.ReasonUnknownTEE},
		{"attest bad public key", "POST", kbsapi.PathAttest, "", `{"secret":"s","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","public_key":"AAAA","evidence":{"version":1,"tee":"sim","report":"AA=="}}`, 400, kbsapi.ReasonMalformed},
		{"no admin token", "GET", kbsapi.PathAdminSecrets, "", ``, 401, kbsapi.ReasonUnauthorized},
		{"wrong admin token", "PUT", kbsapi.PathAdminSecrets + "/s", "wrong", putBody(""), 401, kbsapi.ReasonUnauthorized},
		{"admin token prefix", "POST", kbsapi.PathAdminSecrets + "/s/revoke", testToken[:10], ``, 401, kbsapi.ReasonUnauthorized},
		{"put malformed", "PUT", kbsapi.PathAdminSecrets + "/s", testToken, `{"value":`, 400, kbsapi.ReasonMalformed},
		{"put unknown field", "PUT", kbsapi.PathAdminSecrets + "/s", testToken, putBody(`,"owner":"x"`), 400, kbsapi.ReasonMalformed},
		{"put empty value", "PUT", kbsapi.PathAdminSecrets + "/s", testToken, `{"value":"","policy":"allow: [sim]\n"}`, 400, kbsapi.ReasonMalformed},
		{"put bad policy", "PUT", kbsapi.PathAdminSecrets + "/s", testToken, `{"value":"AA==","policy":"allow: [sim]\ncolour: blue\n"}`, 400, kbsapi.ReasonBadPolicy},
		{"put bad name", "PUT", kbsapi.PathAdminSecrets + "/-x", testToken, putBody(""), 400, kbsapi.ReasonMalformed},
		{"put oversized", "PUT", kbsapi.PathAdminSecrets + "/s", testToken, `{"value":"` + strings.Repeat("A", kbsapi.MaxAdminBody) + `"}`, 413, kbsapi.ReasonTooLarge},
		{"policy bad policy", "PUT", kbsapi.PathAdminSecrets + "/s/policy", testToken, `{"policy":"allow: [quantum]\n"}`, 400, kbsapi.ReasonBadPolicy},
		{"policy unknown secret", "PUT", kbsapi.PathAdminSecrets + "/nope/policy", testToken, `{"policy":"allow: [sim]\n"}`, 404, kbsapi.ReasonNotFound},
		{"revoke unknown secret", "POST", kbsapi.PathAdminSecrets + "/nope/revoke", testToken, ``, 404, kbsapi.ReasonNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot()
			req, _ := http.NewRequest(tc.method, e.http.URL+tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb kbsapi.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if resp.StatusCode != tc.status || eb.Reason != tc.reason || eb.Error == "" {
				t.Fatalf("got %d %+v, want %d %q", resp.StatusCode, eb, tc.status, tc.reason)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			after := e.snapshot()
			if diff := cmp.Diff(before, after, cmp.AllowUnexported(snapshot{})); diff != "" {
				t.Fatalf("state changed by a rejected request (-before +after):\n%s", diff)
			}
		})
	}
}

func b64(b []byte) string {
	s, _ := json.Marshal(b)
	return strings.Trim(string(s), `"`)
}

func TestNewServerRequiresOptions(t *testing.T) {
	if _, err := NewServer(nil); err == nil {
		t.Fatal("NewServer(nil) succeeded")
	}
	if _, err := NewServer(&Options{}); err == nil {
		t.Fatal("NewServer without storage succeeded")
	}
}

func TestEmptyAdminTokenRefusesAll(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	e.srv.opts.AdminToken = ""
	e.srv.token = [32]byte{}
	ac := &kbsclient.AdminClient{BaseURL: e.http.URL, Token: " "}
	if _, err := ac.List(context.Background()); refusalReason(t, err) != kbsapi.ReasonUnauthorized {
		t.Fatalf("List with an unset admin token: %v", err)
	}
}

func TestSealerRejectsMovedCiphertext(t *testing.T) {
	ctx := context.Background()
	sl, _ := NewFileSealer(randBytes(32))
	wk, ct, err := encryptValue(ctx, sl, "a", 1, []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := decryptValue(ctx, sl, "a", 1, wk, ct); err != nil || string(v) != "v" {
		t.Fatalf("round trip: %q %v", v, err)
	}
	for _, tc := range []struct {
		name    string
		version int
	}{{"a", 2}, {"b", 1}} {
		if _, err := decryptValue(ctx, sl, tc.name, tc.version, wk, ct); err == nil {
			t.Errorf("ciphertext of a/1 decrypted as %s/%d", tc.name, tc.version)
		}
	}
	other, _ := NewFileSealer(randBytes(32))
	if _, err := decryptValue(ctx, other, "a", 1, wk, ct); err == nil {
		t.Error("decrypted with another KEK")
	}
	if _, err := NewFileSealer(make([]byte, 16)); err == nil {
		t.Error("16-byte KEK accepted")
	}
	path := filepath.Join(t.TempDir(), "k")
	os.WriteFile(path, []byte("nothex"), 0o600)
	if _, err := LoadOrCreateFileSealer(path); err == nil {
		t.Error("bad key file accepted")
	}
}

func FuzzDecodeChallengeRequest(f *testing.F) {
	f.Add([]byte(`{"secret":"s","tee":"sim"}`))
	f.Add([]byte(`{"secret":"s","tee":"sevsnp"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeChallengeRequest(b)
		if err == nil && (!kbsapi.ValidName(req.Secret) || !req.TEE.Valid()) {
			t.Fatalf("accepted invalid request %q", b)
		}
	})
}

func FuzzDecodeAttestRequest(f *testing.F) {
	f.Add([]byte(`{"secret":"s","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","evidence":{"version":1,"tee":"sim","report":"AA=="}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeAttestRequest(b)
		if err == nil && (len(req.Nonce) != kbsapi.NonceSize || req.Evidence == nil || req.Evidence.Validate() != nil) {
			t.Fatalf("accepted invalid request %q", b)
		}
	})
}

func FuzzDecodePutRequest(f *testing.F) {
	f.Add([]byte(`{"value":"AA==","policy":"allow: [sim]\n"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, pol, err := DecodePutRequest(b)
		if err == nil && (len(req.Value) == 0 || pol == nil) {
			t.Fatalf("accepted invalid request %q", b)
		}
	})
}

func FuzzDecodePolicyRequest(f *testing.F) {
	f.Add([]byte(`{"policy":"allow: [sim]\n"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, pol, err := DecodePolicyRequest(b)
		if err == nil && pol == nil {
			t.Fatalf("accepted invalid request %q", b)
		}
	})
}
