package gateway_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/captoken"
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

// upstreamSawOnly fails the test unless the upstream received an
// X-User-Token header and every one it received was want (alice's
// credential: never another person's, never none).
func (h *harness) upstreamSawOnly(t *testing.T, want string) {
	t.Helper()
	h.up.mu.Lock()
	seen := append([]string(nil), h.up.userTok...)
	h.up.mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("upstream never saw alice's credential")
	}
	for _, v := range seen {
		if v != want {
			t.Fatalf("upstream saw X-User-Token %q", v)
		}
	}
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

	sealedAlice, err := credential.Seal(pub, chainID(t, alice.Token), []byte(`{"user-token":"alice-user-secret"}`))
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
	h.upstreamSawOnly(t, "alice-user-secret")
	// The session ends: its credentials are dropped, so a new session of
	// the same token must send them again.
	as.Close()
	as2 := h.mustConnect(alice.Token, nil)
	res, err = as2.CallTool(context.Background(), &mcp.CallToolParams{Name: "per_whoami", Arguments: map[string]any{}})
	if err != nil || !res.IsError {
		t.Fatalf("new session used the old session's credentials: %v %q", err, callText(res))
	}
}

func credentialSeal(pub []byte, principal, plaintext string) (*credential.Sealed, error) {
	return credential.Seal(pub, principal, []byte(plaintext))
}

// chainID is the principal id a client seals its credentials for.
func chainID(t *testing.T, token string) string {
	t.Helper()
	v, err := captoken.Parse(token)
	if err != nil {
		t.Fatal(err)
	}
	return v.ChainID()
}

// TestAttenuatedTokenIsAnotherPrincipal replays issue 8 #7: a token
// attenuated from alice's shares her root token id, but it must not reach
// her MCP session or her layer-2 credential: not by continuing her session,
// not by binding credentials to it, and not by posting the body her client
// sealed to a session of its own.
func TestAttenuatedTokenIsAnotherPrincipal(t *testing.T) {
	h := newHarness(t, hopts{upstream: perSessionUpstream})
	pub := h.credentialKey(t)
	parent := h.mint("alice", "per_*")
	child, err := captoken.Attenuate(parent.Token, captoken.Caveat{Tools: []string{"per_*"}})
	if err != nil {
		t.Fatal(err)
	}
	ps := h.mustConnect(parent.Token, nil)
	toolNames(t, ps)
	sealed, err := credential.Seal(pub, chainID(t, parent.Token), []byte(`{"user-token":"alice-user-secret"}`))
	if err != nil {
		t.Fatal(err)
	}
	if code := h.postCredentials(t, parent.Token, ps.ID(), sealed); code != 204 {
		t.Fatalf("parent's credentials: status %d", code)
	}
	if res, err := ps.CallTool(context.Background(), &mcp.CallToolParams{Name: "per_whoami", Arguments: map[string]any{}}); err != nil || res.IsError {
		t.Fatalf("parent's call: %v %v", err, res)
	}
	credRequests := func() int {
		h.up.mu.Lock()
		defer h.up.mu.Unlock()
		return len(h.up.userTok)
	}
	parentOnly := credRequests()

	t.Run("child cannot continue the parent's session", func(t *testing.T) {
		req, _ := http.NewRequest("POST", h.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"per_whoami","arguments":{}}}`))
		req.Header.Set("Authorization", "Bearer "+child)
		req.Header.Set("Mcp-Session-Id", ps.ID())
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", ps.InitializeResult().ProtocolVersion)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d (%s), want 403", resp.StatusCode, body)
		}
	})
	t.Run("child cannot bind credentials to the parent's session", func(t *testing.T) {
		if code := h.postCredentials(t, child, ps.ID(), sealed); code != 403 {
			t.Fatalf("status %d, want 403", code)
		}
	})
	cs := h.mustConnect(child, nil)
	toolNames(t, cs)
	t.Run("the parent's sealed credentials do not open for the child", func(t *testing.T) {
		if code := h.postCredentials(t, child, cs.ID(), sealed); code != 400 {
			t.Fatalf("status %d, want 400", code)
		}
	})
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "per_whoami", Arguments: map[string]any{}})
	if err != nil || !res.IsError || !strings.Contains(callText(res), `credential "user-token" not provided`) {
		t.Fatalf("child's call: %v %q, want the credential missing", err, callText(res))
	}
	if n := credRequests(); n != parentOnly {
		t.Fatalf("upstream saw the user credential in %d requests after the child's attempts, want none", n-parentOnly)
	}
	// The audit log names the root token and each chain apart, and records
	// the child's attempts on the parent's session.
	h.gw.Close()
	parentChain, childChain := chainID(t, parent.Token), chainID(t, child)
	attempts := 0
	for _, e := range auditEntries(t, h) {
		switch {
		case e["type"] == "gateway.call" && e["token_chain"] == parentChain:
			if e["actor"] != "token:"+parent.ID {
				t.Errorf("parent's entry %v", e)
			}
		case e["type"] == "gateway.request" && e["reason"] == "session belongs to another token":
			if e["token_chain"] != childChain || e["actor"] != "token:"+parent.ID {
				t.Errorf("session refusal entry %v", e)
			}
			attempts++
		}
	}
	if attempts != 2 {
		t.Fatalf("%d audited attempts on the parent's session, want 2", attempts)
	}
}
