package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testPolicy = "allow: [sevsnp]\nsevsnp:\n  measurement: ['" + "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" + "']\n"

func writeConfig(t *testing.T, model string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gw.yaml"), []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.yaml"), []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `name: assistant
data: ./agent-data
relay: http://127.0.0.1:8444
kbs: http://127.0.0.1:8440
wallet: {secret: agent-wallet}
model:
` + model + `
gateway: {url: https://127.0.0.1:8443, policy: gw.yaml}
system_prompt: "You are a careful assistant."
limits: {max_tokens: 256, tool_calls_per_turn: 3, turns_per_minute: 10, context_messages: 5}
`
	p := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, dir
}

func TestLoadConfig(t *testing.T) {
	for _, c := range []struct {
		name, model string
		err         string // substring; "" = accepted
		attested    bool
	}{
		{"loopback unattested", "  url: http://127.0.0.1:8088/v1\n  model: tiny-chat", "", false},
		{"localhost unattested", "  url: http://localhost:8088/v1\n  model: tiny-chat", "", false},
		{"off loopback refused", "  url: http://10.0.0.5:8088/v1\n  model: m", "off loopback and unattested", false},
		{"off loopback, said so", "  url: https://api.example.com/v1\n  model: m\n  attested: false", "", false},
		{"attested with policy", "  url: https://llm.example.com/v1\n  model: m\n  policy: model.yaml", "", true},
		{"attested without policy", "  url: https://llm.example.com/v1\n  model: m\n  attested: true", "no policy is given", false},
		{"unattested with policy", "  url: https://llm.example.com/v1\n  model: m\n  policy: model.yaml\n  attested: false", "remove one", false},
		{"unknown key", "  url: http://127.0.0.1:8088/v1\n  model: m\n  temperature: 2", "not found", false},
		{"api key without name", "  url: http://127.0.0.1:8088/v1\n  model: m\n  api_key: {}", "names no secret", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, dir := writeConfig(t, c.model)
			l, err := LoadConfig(p)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Effective.Model.Attested != c.attested {
				t.Errorf("attested %v, want %v", l.Effective.Model.Attested, c.attested)
			}
			if l.Data != filepath.Join(dir, "agent-data") {
				t.Errorf("data %q not resolved against the config's directory", l.Data)
			}
			if l.Effective.Limits.ContextMessages != 5 || l.Effective.Gateway.PolicySHA256.IsZero() {
				t.Errorf("effective configuration %+v", l.Effective)
			}
		})
	}
}

// The effective configuration holds no secret names and its digest
// changes with the model's attested flag.
func TestEffectiveConfigShowsUnattested(t *testing.T) {
	p1, _ := writeConfig(t, "  url: https://api.example.com/v1\n  model: m\n  attested: false\n  api_key: {secret: model-key}")
	p2, _ := writeConfig(t, "  url: https://api.example.com/v1\n  model: m\n  policy: model.yaml")
	l1, err := LoadConfig(p1)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := LoadConfig(p2)
	if err != nil {
		t.Fatal(err)
	}
	if l1.Effective.Model.Attested || l1.Effective.Digest() == l2.Effective.Digest() {
		t.Error("an unattested endpoint does not show in the effective configuration")
	}
	if strings.Contains(string(l1.Effective.Canonical()), "model-key") || strings.Contains(string(l1.Effective.Canonical()), "agent-wallet") {
		t.Error("the effective configuration names a secret")
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("name: a\ndata: d\nrelay: r\nkbs: k\nwallet: {secret: w}\nmodel: {url: 'http://127.0.0.1/v1', model: m}\ngateway: {url: 'https://g', policy: p}\n"))
	f.Add([]byte("name: a\ndata: d\nrelay: r\nkbs: k\nwallet: {secret: w}\nmodel: {url: 'http://127.0.0.1/v1', model: m}\ngateway: {url: 'https://g', policy: p}\npay: {signer: 'https://s', policy: p, token: {secret: t}, rpc: 'http://r', max_per_call: 5, assets: [4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU]}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseConfig(b, t.TempDir())
		if err == nil && l.Effective.Validate() != nil {
			t.Fatal("accepted an invalid effective configuration")
		}
	})
}

func FuzzParseChatResponse(f *testing.F) {
	f.Add([]byte(`{"choices":[{"message":{"role":"assistant","content":"hi"}}]}`))
	f.Add([]byte(`{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"x","arguments":"{}"}}]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseChatResponse(b)
		if err != nil {
			return
		}
		if m.Role != "assistant" {
			t.Fatalf("role %q", m.Role)
		}
		for _, tc := range m.ToolCalls {
			if tc.Function.Name == "" || tc.ID == "" {
				t.Fatal("tool call without a name or id")
			}
		}
	})
}

func FuzzParseHeld(f *testing.F) {
	f.Add("alice's call to notes_write_note with arguments {\"name\":\"x\"} waits for approval 0123456789abcdef0123456789abcdef. A person approves it")
	f.Add("waiting for approval 0123456789abcdef0123456789abcdef")
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := parseHeld(s, nil)
		if ok && len(h.ID) != 32 {
			t.Fatalf("id %q", h.ID)
		}
	})
}

func TestParseHeld(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef"
	h, ok := parseHeld("alice's call to notes_write_note with arguments {\"name\":\"x\"} waits for approval "+id+". A person approves it out of band: `chatmcp approvals approve "+id+"`", nil)
	if !ok || h.ID != id || h.Arguments != `{"name":"x"}` {
		t.Errorf("parsed %+v, %v", h, ok)
	}
	if h, ok := parseHeld("waiting for approval "+id, nil); !ok || h.ID != id {
		t.Errorf("progress: %+v, %v", h, ok)
	}
	if _, ok := parseHeld("nothing to see", nil); ok {
		t.Error("parsed an id from nothing")
	}
	if h, ok := parseHeld("x", map[string]any{ApprovalMetaKey: id}); !ok || h.ID != id {
		t.Errorf("meta: %+v, %v", h, ok)
	}
}
