package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/internal/wire"
)

// TestAdminErrorReasons: every error answer of the admin API and the
// credential endpoints is {"error", "reason"} with the reason code of the
// failed check (issue 8 finding 14), and a mint request may name as many
// tool patterns as a token holds and no more (finding 13).
func TestAdminErrorReasons(t *testing.T) {
	h := newHarness(t, hopts{})
	tok := h.mint("alice", "*").Token
	cs := h.mustConnect(tok, nil)
	toolNames(t, cs)
	patterns := func(n int) []string {
		p := make([]string, n)
		for i := range p {
			p[i] = fmt.Sprintf("up_tool%d", i)
		}
		return p
	}
	admin := "Bearer " + h.gw.AdminToken()
	cases := []struct {
		name, method, path, auth string
		body                     any
		status                   int
		reason, says             string
	}{
		{"no admin token", "GET", "/admin/v1/info", "", nil, 401, gatewayapi.ReasonUnauthorized, "admin token"},
		{"capability token on admin API", "GET", "/admin/v1/info", "Bearer " + tok, nil, 401, gatewayapi.ReasonUnauthorized, "admin token"},
		{"unknown endpoint", "GET", "/admin/v1/nope", admin, nil, 404, gatewayapi.ReasonNotFound, "no such admin endpoint"},
		{"mint without tools", "POST", "/admin/v1/tokens", admin, map[string]any{"ttl": "1h"}, 400, gatewayapi.ReasonBadPattern, "at least one"},
		{"mint with unknown field", "POST", "/admin/v1/tokens", admin, map[string]any{"tools": []string{"*"}, "admin": true}, 400, gatewayapi.ReasonMalformed, "admin"},
		{"mint duplicate key", "POST", "/admin/v1/tokens", admin, json.RawMessage(`{"tools":["up_echo"],"tools":["*"]}`), 400, gatewayapi.ReasonMalformed, "duplicate"},
		{"mint over the token's pattern limit", "POST", "/admin/v1/tokens", admin, map[string]any{"tools": patterns(captoken.MaxPatterns + 1)}, 400, gatewayapi.ReasonTooManyPatterns, fmt.Sprintf("limit of %d", captoken.MaxPatterns)},
		{"mint pattern too long", "POST", "/admin/v1/tokens", admin, map[string]any{"tools": []string{strings.Repeat("x", captoken.MaxStringLen+1)}}, 400, gatewayapi.ReasonBadPattern, "longer than"},
		{"mint bad glob", "POST", "/admin/v1/tokens", admin, map[string]any{"tools": []string{"[x"}}, 400, gatewayapi.ReasonBadPattern, "invalid pattern"},
		{"mint ttl too long", "POST", "/admin/v1/tokens", admin, map[string]any{"tools": []string{"*"}, "ttl": "800h"}, 400, gatewayapi.ReasonBadTTL, "ttl"},
		{"mint ttl unparsable", "POST", "/admin/v1/tokens", admin, map[string]any{"tools": []string{"*"}, "ttl": "soon"}, 400, gatewayapi.ReasonBadTTL, "ttl"},
		{"mint subject too long", "POST", "/admin/v1/tokens", admin, map[string]any{"tools": []string{"*"}, "subject": strings.Repeat("s", captoken.MaxStringLen+1)}, 400, gatewayapi.ReasonBadSubject, "subject"},
		{"mint body too large", "POST", "/admin/v1/tokens", admin, json.RawMessage(`"` + strings.Repeat("a", gateway.MaxAdminBody) + `"`), 413, gatewayapi.ReasonTooLarge, "larger than"},
		{"revoke bad id", "POST", "/admin/v1/tokens/xyz/revoke", admin, nil, 400, gatewayapi.ReasonBadID, ""},
		{"approve unknown approval", "POST", "/admin/v1/approvals/abc/approve", admin, nil, 404, gatewayapi.ReasonNotPending, ""},
		{"deny unknown approval", "POST", "/admin/v1/approvals/abc/deny", admin, nil, 404, gatewayapi.ReasonNotPending, ""},
		{"approve tool without hash", "POST", "/admin/v1/tools/up_echo/approve", admin, nil, 400, gatewayapi.ReasonSHA256Required, "sha256"},
		{"approve tool malformed", "POST", "/admin/v1/tools/up_echo/approve", admin, map[string]any{"hash": "x"}, 400, gatewayapi.ReasonMalformed, "hash"},
		{"approve tool not pending", "POST", "/admin/v1/tools/up_echo/approve", admin, gateway.ToolApproveRequest{SHA256: strings.Repeat("0", 64)}, 404, gatewayapi.ReasonNotPending, "up_echo"},
		{"credential key by POST", "POST", gateway.PathCredentialKey, "", nil, 405, gatewayapi.ReasonMethod, "GET only"},
		{"credentials by GET", "GET", gateway.PathCredentials, "Bearer " + tok, nil, 405, gatewayapi.ReasonMethod, "POST only"},
		{"credentials without token", "POST", gateway.PathCredentials, "", nil, 401, gatewayapi.ReasonUnauthorized, "bearer"},
		{"credentials rejected", "POST", gateway.PathCredentials, "Bearer " + tok, map[string]any{"enc": "x"}, 400, gatewayapi.ReasonCredentialsRejected, "credentials rejected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r io.Reader
			if c.body != nil {
				b, _ := json.Marshal(c.body)
				r = bytes.NewReader(b)
			}
			req, _ := http.NewRequest(c.method, h.url+c.path, r)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			req.Header.Set("Mcp-Session-Id", cs.ID())
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var eb gatewayapi.ErrorBody
			if err := wire.Decode(b, &eb); err != nil {
				t.Fatalf("error body %s: %v", b, err)
			}
			if resp.StatusCode != c.status || eb.Reason != c.reason || !strings.Contains(eb.Error, c.says) {
				t.Fatalf("got %d %s, want %d reason %q naming %q", resp.StatusCode, b, c.status, c.reason, c.says)
			}
		})
	}
	// The limit is the token's: a mint at the limit succeeds and the token
	// works.
	var m gateway.MintResponse
	if code := h.admin("POST", "/admin/v1/tokens", gateway.MintRequest{Tools: patterns(captoken.MaxPatterns)}, &m); code != 200 {
		t.Fatalf("mint of %d patterns: %d", captoken.MaxPatterns, code)
	}
	h.mustConnect(m.Token, nil)
}
