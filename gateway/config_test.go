package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const issueExample = `
listen: 127.0.0.1:8443
data: ./gateway-data            # pins, audit.jsonl, admin.token
kbs: http://127.0.0.1:8440
approval_timeout: 2m
upstreams:
  fs:
    command: node
    args: [/path/to/mcp-server-filesystem, /srv/files]
  everything:
    command: node
    args: [/path/to/mcp-server-everything]
    env:
      API_KEY: {secret: api-key}          # layer-1 credential from the KBS
  remote:
    url: https://mcp.example.internal/mcp
    headers:
      Authorization: {secret: remote-token, format: "Bearer {}"}
`

func TestParseIssueExample(t *testing.T) {
	c, err := ParseConfig([]byte(issueExample))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8443" || time.Duration(c.ApprovalTimeout) != 2*time.Minute || len(c.Upstreams) != 3 {
		t.Fatalf("config %+v", c)
	}
	if got := strings.Join(c.SecretNames(), ","); got != "api-key,remote-token" {
		t.Fatalf("secrets %s", got)
	}
	v := c.Upstreams["remote"].Headers["Authorization"]
	if s, err := v.Resolve(map[string][]byte{"remote-token": []byte("T")}, nil); err != nil || s != "Bearer T" {
		t.Fatalf("resolve: %q %v", s, err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	os.WriteFile(path, []byte(issueExample), 0o600)
	lc, err := LoadConfig(path)
	if err != nil || lc.Data != filepath.Join(dir, "gateway-data") {
		t.Fatalf("load: %v %s", err, lc.Data)
	}
}

func TestParseConfigErrors(t *testing.T) {
	up := "upstreams:\n  a:\n    command: x\n"
	cases := []struct{ name, yaml, want string }{
		{"empty", "", "empty configuration"},
		{"unknown top-level key", "listen: x\nlisten_addr: y\n" + up, "line 2"},
		{"unknown upstream key", "upstreams:\n  a:\n    command: x\n    cmd: y\n", "line 4"},
		{"duplicate key", "listen: a\nlisten: b\n" + up, "already defined"},
		{"two documents", up + "---\nlisten: x\n", "more than one"},
		{"no upstreams", "listen: x\n", "at least one upstream"},
		{"both command and url", "upstreams:\n  a:\n    command: x\n    url: http://h/\n", "either command or url"},
		{"neither", "upstreams:\n  a:\n    args: [x]\n", "command or url is required"},
		{"underscore in name", "upstreams:\n  a_b:\n    command: x\n", "no underscore"},
		{"bad url", "upstreams:\n  a:\n    url: ftp://x\n", "not an http"},
		{"headers on command", "upstreams:\n  a:\n    command: x\n    headers: {A: b}\n", "url upstreams only"},
		{"env on url", "upstreams:\n  a:\n    url: http://h/\n    env: {A: b}\n", "command upstreams only"},
		{"secret without kbs", "upstreams:\n  a:\n    command: x\n    env: {A: {secret: s}}\n", "kbs: required"},
		{"secret and credential", "kbs: http://k\nupstreams:\n  a:\n    command: x\n    env: {A: {secret: s, credential: c}}\n", "not both"},
		{"unknown value key", "kbs: http://k\nupstreams:\n  a:\n    command: x\n    env: {A: {secret: s, fmt: x}}\n", "not allowed"},
		{"bad format", "kbs: http://k\nupstreams:\n  a:\n    command: x\n    env: {A: {secret: s, format: nope}}\n", "exactly once"},
		{"bad env name", "upstreams:\n  a:\n    command: x\n    env: {1A: b}\n", "invalid variable"},
		{"bad header name", "upstreams:\n  a:\n    url: http://h/\n    headers: {\"A B\": b}\n", "invalid header"},
		{"bad timeout", "approval_timeout: soon\n" + up, "line 1"},
		{"negative timeout", "approval_timeout: -1s\n" + up, "approval_timeout"},
		{"null value", "upstreams:\n  a:\n    command: x\n    env: {A: }\n", "empty value"},
		{"bad secret name", "kbs: http://k\nupstreams:\n  a:\n    command: x\n    env: {A: {secret: \"../x\"}}\n", "invalid secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestCredentialsNames(t *testing.T) {
	c, err := ParseConfig([]byte("upstreams:\n  gh:\n    url: https://x/mcp\n    headers:\n      Authorization: {credential: gh-token, format: \"Bearer {}\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Upstreams["gh"].Credentials(); len(got) != 1 || got[0] != "gh-token" {
		t.Fatalf("credentials %v", got)
	}
	if _, err := c.Upstreams["gh"].Headers["Authorization"].Resolve(nil, nil); err == nil {
		t.Fatal("resolved a missing credential")
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(issueExample))
	f.Add([]byte("upstreams:\n  a:\n    command: x\n    env: {A: {credential: c}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		for name, u := range c.Upstreams {
			if !upstreamName.MatchString(name) || (u.Command == "") == (u.URL == "") {
				t.Fatalf("invalid upstream %q accepted", name)
			}
		}
	})
}

func FuzzParseMintRequest(f *testing.F) {
	f.Add([]byte(`{"tools":["fs_*"],"ttl":"1h","subject":"alice"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ttl, err := ParseMintRequest(b)
		if err != nil {
			return
		}
		if len(m.Tools) == 0 || ttl <= 0 || ttl > MaxTokenTTL {
			t.Fatalf("invalid request accepted: %+v %s", m, ttl)
		}
	})
}
