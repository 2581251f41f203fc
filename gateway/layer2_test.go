package gateway_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/credential"
)

// perSessionUpstream adds upstream "per", the same test server reached
// with the caller's layer-2 credential in a header.
func perSessionUpstream(u *testUpstream) string {
	return fmt.Sprintf(`  per:
    url: %s
    headers:
      X-User-Token: {credential: user-token}
`, u.http.URL)
}

// credentialKey fetches the published key and checks its signature with
// the TLS peer's certificate key, as a client does.
func (h *harness) credentialKey(t *testing.T) []byte {
	t.Helper()
	var peer *ecdsa.PublicKey
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			peer = cs.PeerCertificates[0].PublicKey.(*ecdsa.PublicKey)
			return nil
		},
	}}}
	resp, err := hc.Get(h.url + "/.well-known/chatmcp/credential-key")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pub credential.Published
	if err := json.NewDecoder(resp.Body).Decode(&pub); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append([]byte(credential.KeySignatureContext), pub.PublicKey...))
	if pub.KEM != credential.KEMName || !ecdsa.VerifyASN1(peer, sum[:], pub.Signature) {
		t.Fatal("credential key signature does not verify under the TLS key")
	}
	return pub.PublicKey
}

func (h *harness) postCredentials(t *testing.T, token, session string, sealed *credential.Sealed) int {
	t.Helper()
	b, _ := json.Marshal(sealed)
	req, _ := http.NewRequest("POST", h.url+"/v1/credentials", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", session)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestLayer2Credentials(t *testing.T) {
	h := newHarness(t, hopts{upstream: perSessionUpstream})
	pub := h.credentialKey(t)
	alice, bob := h.mint("alice", "per_*"), h.mint("bob", "per_*")
	as := h.mustConnect(alice.Token, nil)
	bs := h.mustConnect(bob.Token, nil)
	// A tools/list registers the sessions with the gateway.
	toolNames(t, as)
	toolNames(t, bs)

	sealedAlice, err := credential.Seal(pub, alice.ID, []byte(`{"user-token":"alice-user-secret"}`))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("confused deputy: bob cannot bind to alice's session", func(t *testing.T) {
		if code := h.postCredentials(t, bob.Token, as.ID(), sealedAlice); code != 403 {
			t.Fatalf("status %d, want 403", code)
		}
	})
	t.Run("sealed for alice's token does not open for bob", func(t *testing.T) {
		if code := h.postCredentials(t, bob.Token, bs.ID(), sealedAlice); code != 400 {
			t.Fatalf("status %d, want 400", code)
		}
	})
	t.Run("unknown session", func(t *testing.T) {
		if code := h.postCredentials(t, alice.Token, "nope", sealedAlice); code != 400 {
			t.Fatalf("status %d, want 400", code)
		}
	})
	t.Run("no token", func(t *testing.T) {
		if code := h.postCredentials(t, "", as.ID(), sealedAlice); code != 401 {
			t.Fatalf("status %d, want 401", code)
		}
	})
	if code := h.postCredentials(t, alice.Token, as.ID(), sealedAlice); code != 204 {
		t.Fatalf("alice's credentials: status %d", code)
	}
	res, err := as.CallTool(context.Background(), &mcp.CallToolParams{Name: "per_whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("alice's call: %v %v", err, res)
	}
	res, err = bs.CallTool(context.Background(), &mcp.CallToolParams{Name: "per_whoami", Arguments: map[string]any{}})
	if err != nil || !res.IsError || !strings.Contains(callText(res), `credential "user-token" not provided`) {
		t.Fatalf("bob's call without credentials: %v %q", err, callText(res))
	}
	h.up.mu.Lock()
	seen := append([]string(nil), h.up.userTok...)
	h.up.mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("upstream never saw alice's credential")
	}
	for _, v := range seen {
		if v != "alice-user-secret" {
			t.Fatalf("upstream saw X-User-Token %q", v)
		}
	}
	// The session ends: its credentials are dropped, so a new session of
	// the same token must send them again.
	as.Close()
	time.Sleep(50 * time.Millisecond)
	as2 := h.mustConnect(alice.Token, nil)
	res, err = as2.CallTool(context.Background(), &mcp.CallToolParams{Name: "per_whoami", Arguments: map[string]any{}})
	if err != nil || !res.IsError {
		t.Fatalf("new session used the old session's credentials: %v %q", err, callText(res))
	}
}

func credentialSeal(pub []byte, tokenID, plaintext string) (*credential.Sealed, error) {
	return credential.Seal(pub, tokenID, []byte(plaintext))
}
