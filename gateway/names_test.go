package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/gatewayapi"
)

// startWith builds a gateway from the YAML of its upstreams block.
func startWith(t *testing.T, upstreams string) (*gateway.Server, error) {
	t.Helper()
	cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata: %s\nupstreams:\n%s", t.TempDir(), upstreams)))
	if err != nil {
		t.Fatal(err)
	}
	att, err := sim.NewAttester(nil)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg, &gateway.Options{Attester: att, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if gw != nil {
		t.Cleanup(func() { gw.Close() })
	}
	return gw, err
}

// prefix: "" exposes an upstream's names as they are, any other prefix is
// put in front, and the default stays "<upstream>_".
func TestPrefix(t *testing.T) {
	a, b, c := newPeer(t), newPeer(t), newPeer(t)
	gw, err := startWith(t, fmt.Sprintf("  a:\n    url: %s\n    prefix: \"\"\n  b:\n    url: %s\n    prefix: x-\n  c:\n    url: %s\n",
		a.http.URL, b.http.URL, c.http.URL))
	if err != nil {
		t.Fatal(err)
	}
	names := gw.ToolNames()
	for _, want := range []string{"hang", "x-hang", "c_hang"} {
		if !slices.Contains(names, want) {
			t.Errorf("tool %q not exposed; have %v", want, names)
		}
	}
}

// Two upstreams whose exposed tool (or prompt) names collide stop the
// start, and the error names both.
func TestExposedNameCollisionRefused(t *testing.T) {
	a, b := newPeer(t), newPeer(t)
	cases := []struct{ name, yaml string }{
		{"both un-prefixed", fmt.Sprintf("  a:\n    url: %s\n    prefix: \"\"\n  b:\n    url: %s\n    prefix: \"\"\n", a.http.URL, b.http.URL)},
		{"prefix equal to another's default", fmt.Sprintf("  a:\n    url: %s\n  b:\n    url: %s\n    prefix: a_\n", a.http.URL, b.http.URL)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := startWith(t, tc.yaml)
			if err == nil {
				t.Fatal("the gateway started with colliding names")
			}
			for _, want := range []string{"upstream a", "upstream b", "collides"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

func TestPrefixConfig(t *testing.T) {
	for _, bad := range []string{`"a b"`, `"a.b"`, `"` + strings.Repeat("x", 33) + `"`} {
		_, err := gateway.ParseConfig([]byte("upstreams:\n  a:\n    url: http://127.0.0.1:1/mcp\n    prefix: " + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "prefix") {
			t.Errorf("prefix %s: got %v, want an error naming the prefix", bad, err)
		}
	}
	for _, bad := range []string{"-1s", "25h"} {
		_, err := gateway.ParseConfig([]byte("upstreams:\n  a:\n    url: http://127.0.0.1:1/mcp\n    call_timeout: " + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "call_timeout") {
			t.Errorf("call_timeout %s: got %v, want an error naming call_timeout", bad, err)
		}
	}
	if _, err := gateway.ParseConfig([]byte("upstreams:\n  a:\n    url: http://127.0.0.1:1/mcp\n    protocol_version: 2099-01-01\n")); err == nil || !strings.Contains(err.Error(), "protocol_version") {
		t.Errorf("protocol_version 2099-01-01: got %v, want an error naming protocol_version", err)
	}
	for _, bad := range []string{"http://x", "*.example", "a/b", "x:y"} {
		_, err := gateway.ParseConfig([]byte("allowed_hosts: [\"" + bad + "\"]\nupstreams:\n  a:\n    url: http://127.0.0.1:1/mcp\n"))
		if err == nil || !strings.Contains(err.Error(), "allowed_hosts") {
			t.Errorf("allowed_hosts %s: got %v, want an error naming allowed_hosts", bad, err)
		}
	}
}

// DNS rebinding: a request naming a foreign host in Host or Origin is
// refused with 403 and a reason code before anything else; the listen
// address, loopback names and allowed_hosts entries pass.
func TestHostAndOriginChecked(t *testing.T) {
	h := newHarness(t, hopts{upstream: func(*testUpstream) string { return "allowed_hosts: [gw.example, \"other.example:9443\"]\n" }})
	tok := h.mint("alice", "up_*").Token
	cases := []struct {
		host, origin string
		reason       string // "" when allowed
	}{
		{"127.0.0.1:8443", "", ""},
		{"localhost:8443", "https://localhost:8443", ""},
		{"[::1]:8443", "", ""},
		{"gw.example", "https://gw.example", ""},
		{"other.example:9443", "", ""},
		{"evil.example:8443", "", gatewayapi.ReasonHostNotAllowed},
		{"other.example:1", "", gatewayapi.ReasonHostNotAllowed},
		{"10.0.0.1:8443", "", gatewayapi.ReasonHostNotAllowed},
		{"127.0.0.1:8443", "http://evil.example:8443", gatewayapi.ReasonOriginNotAllowed},
		{"127.0.0.1:8443", "null", gatewayapi.ReasonOriginNotAllowed},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("POST", h.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
		req.Host = tc.host
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tc.reason == "" {
			if resp.StatusCode != 200 {
				t.Errorf("Host %s Origin %q: status %d %s, want 200", tc.host, tc.origin, resp.StatusCode, body)
			}
			continue
		}
		if resp.StatusCode != 403 || !strings.Contains(string(body), `"reason":"`+tc.reason+`"`) {
			t.Errorf("Host %s Origin %q: status %d %s, want 403 %q", tc.host, tc.origin, resp.StatusCode, body, tc.reason)
		}
	}
}
