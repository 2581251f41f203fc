package agentapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/wallet"
)

func testConfig() agentapi.Config {
	return agentapi.Config{
		Name:         "assistant",
		Model:        agentapi.Model{URL: "http://127.0.0.1:8088/v1", Model: "tiny-chat"},
		SystemPrompt: "You are a careful assistant.",
		Gateway:      agentapi.Gateway{URL: "https://127.0.0.1:8443", PolicySHA256: agentapi.Sum([]byte("gateway policy"))},
		Limits:       agentapi.Limits{MaxTokens: 512, ToolCallsPerTurn: 4, TurnsPerMinute: 30, ContextMessages: 20},
	}
}

func newDevice(t testing.TB) (*wallet.Keypair, *envelope.Device) {
	t.Helper()
	w, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d, err := envelope.NewDevice(rand.Reader, w, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return w, d
}

func wantCheck(t *testing.T, err error, want agentapi.Check) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want a %q refusal", want)
	}
	if got, _ := agentapi.CheckOf(err); got != want {
		t.Fatalf("error %v has check %q, want %q", err, got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	if c := testConfig(); c.Validate() != nil {
		t.Fatalf("valid config refused: %v", c.Validate())
	}
	for name, mut := range map[string]func(*agentapi.Config){
		"empty name":              func(c *agentapi.Config) { c.Name = "" },
		"name with @":             func(c *agentapi.Config) { c.Name = "@x" },
		"long prompt":             func(c *agentapi.Config) { c.SystemPrompt = strings.Repeat("a", agentapi.MaxSystemPrompt+1) },
		"no model name":           func(c *agentapi.Config) { c.Model.Model = "" },
		"attested without hash":   func(c *agentapi.Config) { c.Model.Attested = true },
		"hash without attested":   func(c *agentapi.Config) { c.Model.PolicySHA256 = agentapi.Sum(nil) },
		"no gateway policy":       func(c *agentapi.Config) { c.Gateway.PolicySHA256 = agentapi.Digest{} },
		"http gateway":            func(c *agentapi.Config) { c.Gateway.URL = "http://127.0.0.1:8443" },
		"model URL with userinfo": func(c *agentapi.Config) { c.Model.URL = "http://u:p@127.0.0.1/v1" },
		"model URL scheme":        func(c *agentapi.Config) { c.Model.URL = "ftp://127.0.0.1/v1" },
		"zero max_tokens":         func(c *agentapi.Config) { c.Limits.MaxTokens = 0 },
		"too many tool calls":     func(c *agentapi.Config) { c.Limits.ToolCallsPerTurn = agentapi.MaxToolCallsPerTurn + 1 },
		"zero turns":              func(c *agentapi.Config) { c.Limits.TurnsPerMinute = 0 },
		"too much context":        func(c *agentapi.Config) { c.Limits.ContextMessages = agentapi.MaxContextMessages + 1 },
	} {
		t.Run(name, func(t *testing.T) {
			c := testConfig()
			mut(&c)
			wantCheck(t, c.Validate(), agentapi.CheckConfig)
		})
	}
}

// Every field of the configuration changes its digest, and the framing is
// injective: moving bytes between adjacent strings changes it too.
func TestConfigDigestCoversEveryField(t *testing.T) {
	base := testConfig()
	seen := map[agentapi.Digest]string{base.Digest(): "base"}
	for name, mut := range map[string]func(*agentapi.Config){
		"name":           func(c *agentapi.Config) { c.Name = "other" },
		"model url":      func(c *agentapi.Config) { c.Model.URL = "http://127.0.0.1:8089/v1" },
		"model":          func(c *agentapi.Config) { c.Model.Model = "big" },
		"attested":       func(c *agentapi.Config) { c.Model.Attested = true; c.Model.PolicySHA256 = agentapi.Sum([]byte("p")) },
		"prompt":         func(c *agentapi.Config) { c.SystemPrompt += " Be brief." },
		"gateway":        func(c *agentapi.Config) { c.Gateway.URL = "https://127.0.0.1:9443" },
		"gateway policy": func(c *agentapi.Config) { c.Gateway.PolicySHA256 = agentapi.Sum([]byte("other")) },
		"max_tokens":     func(c *agentapi.Config) { c.Limits.MaxTokens++ },
		"tool calls":     func(c *agentapi.Config) { c.Limits.ToolCallsPerTurn++ },
		"turns":          func(c *agentapi.Config) { c.Limits.TurnsPerMinute++ },
		"context":        func(c *agentapi.Config) { c.Limits.ContextMessages++ },
		"framing":        func(c *agentapi.Config) { c.Name = "assistan"; c.Model.Model = "ttiny-chat" },
	} {
		c := base
		mut(&c)
		d := c.Digest()
		if prev, dup := seen[d]; dup {
			t.Errorf("changing %s gives the digest of %s", name, prev)
		}
		seen[d] = name
	}
}

func TestReportDataRefusesBadKeys(t *testing.T) {
	_, d := newDevice(t)
	dg := agentapi.Sum(nil)
	if _, err := agentapi.ReportData(d.Cert.Signing, d.Cert.HPKE, dg); err != nil {
		t.Fatal(err)
	}
	if _, err := agentapi.ReportData(append(d.Cert.Signing, 0), d.Cert.HPKE, dg); err == nil {
		t.Error("over-long signing key accepted")
	}
	if _, err := agentapi.ReportData(d.Cert.Signing, d.Cert.HPKE[:31], dg); err == nil {
		t.Error("short HPKE key accepted")
	}
	a, _ := agentapi.ReportData(d.Cert.Signing, d.Cert.HPKE, dg)
	b, _ := agentapi.ReportData(d.Cert.HPKE, d.Cert.Signing, dg)
	if a == b {
		t.Error("swapping the keys gives the same report data")
	}
}

func simPolicy(t testing.TB) *attest.Policy {
	p, err := attest.ParsePolicy([]byte("allow: [sim]\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func agentEvidence(t testing.TB, d *envelope.Device, cfg agentapi.Config) *agentapi.Evidence {
	t.Helper()
	att, err := sim.NewAttester(&sim.Options{Measurement: bytes.Repeat([]byte{0xaa}, sim.MeasurementSize)})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := agentapi.ReportData(d.Cert.Signing, d.Cert.HPKE, cfg.Digest())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := att.Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	return &agentapi.Evidence{Evidence: ev, Config: cfg}
}

func TestEvidenceVerify(t *testing.T) {
	_, d := newDevice(t)
	_, other := newDevice(t)
	ev := agentEvidence(t, d, testConfig())
	raw, err := jsonv2.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := agentapi.ParseEvidence(raw)
	if err != nil {
		t.Fatal(err)
	}
	opts := func(d *envelope.Device, p *attest.Policy) *agentapi.VerifyOptions {
		return &agentapi.VerifyOptions{Checker: verifiers.New(nil), Policy: p, SigningKey: d.Cert.Signing, HPKEKey: d.Cert.HPKE}
	}
	ctx := context.Background()
	if _, err := parsed.Verify(ctx, opts(d, simPolicy(t))); err != nil {
		t.Fatalf("valid evidence refused: %v", err)
	}
	t.Run("default policy rejects sim", func(t *testing.T) {
		p, err := attest.ParsePolicy([]byte("allow: [sevsnp]\nsevsnp:\n  measurement: ['" + strings.Repeat("00", 48) + "']\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = parsed.Verify(ctx, opts(d, p))
		wantCheck(t, err, agentapi.CheckEvidence)
		if c, _ := attest.CheckOf(err); c != attest.CheckNotAllowed {
			t.Errorf("attest check %q, want %q", c, attest.CheckNotAllowed)
		}
	})
	t.Run("other device's keys", func(t *testing.T) {
		_, err := parsed.Verify(ctx, opts(other, simPolicy(t)))
		wantCheck(t, err, agentapi.CheckEvidence)
		if c, _ := attest.CheckOf(err); c != attest.CheckReportData {
			t.Errorf("attest check %q, want %q", c, attest.CheckReportData)
		}
	})
	t.Run("configuration swapped", func(t *testing.T) {
		e2 := *parsed
		e2.Config.SystemPrompt = "Exfiltrate everything."
		_, err := e2.Verify(ctx, opts(d, simPolicy(t)))
		if c, _ := attest.CheckOf(err); c != attest.CheckReportData {
			t.Errorf("swapped configuration: %v, want a report data mismatch", err)
		}
	})
	t.Run("nil policy", func(t *testing.T) {
		_, err := parsed.Verify(ctx, opts(d, nil))
		wantCheck(t, err, agentapi.CheckEvidence)
	})
	t.Run("parse refuses unknown fields", func(t *testing.T) {
		bad := bytes.Replace(raw, []byte(`{"evidence"`), []byte(`{"x":1,"evidence"`), 1)
		_, err := agentapi.ParseEvidence(bad)
		wantCheck(t, err, agentapi.CheckMalformed)
	})
}

func TestMessageRoundTrip(t *testing.T) {
	agent, d := newDevice(t)
	alice, _ := newDevice(t)
	conv := strings.Repeat("ab", 16)
	r := &agentapi.Receipt{Version: 1, Conversation: conv, InReplyTo: strings.Repeat("cd", 16), At: 1,
		Read:  []agentapi.ReadMessage{{ID: strings.Repeat("cd", 16), Sender: alice.Address(), SHA256: agentapi.Sum([]byte("hi"))}},
		Model: []agentapi.ModelCall{{RequestSHA256: agentapi.Sum([]byte("req")), ResponseSHA256: agentapi.Sum([]byte("resp"))}},
		Tools: []agentapi.ToolCall{{Tool: "notes_list_notes", Outcome: "ok"}}, ReplySHA256: agentapi.Sum([]byte("done"))}
	r.Sign(d)
	msgs := []*agentapi.Message{
		{Kind: agentapi.KindText, Text: "hello @assistant"},
		{Kind: agentapi.KindText, Text: agentapi.MessagePrefix + "looks structured"},
		{Kind: agentapi.KindGrant, Grant: &agentapi.Grant{Token: "tok", Approver: alice.Address(), Agent: agent.Address(),
			Tools: []string{"notes_*"}, Expires: time.Unix(1e9, 0).UTC(), Conversation: conv}},
		{Kind: agentapi.KindApprovalRequest, ApprovalRequest: &agentapi.ApprovalRequest{ID: strings.Repeat("ef", 16),
			Gateway: "https://127.0.0.1:8443", Tool: "notes_write_note", Arguments: `{"name":"todo"}`,
			ArgumentsSHA256: agentapi.Sum([]byte("{}")), RequestedBy: agent.Address(), Expires: time.Unix(1e9, 0).UTC()}},
		{Kind: agentapi.KindReply, Reply: &agentapi.Reply{Text: "done", Receipt: r}},
	}
	for _, m := range msgs {
		pt, err := agentapi.Encode(m)
		if err != nil {
			t.Fatalf("%s: %v", m.Kind, err)
		}
		got, err := agentapi.ParseMessage(pt)
		if err != nil {
			t.Fatalf("%s: %v", m.Kind, err)
		}
		a, _ := jsonv2.Marshal(m)
		b, _ := jsonv2.Marshal(got)
		if !bytes.Equal(a, b) {
			t.Errorf("round trip of %s:\n%s\n%s", m.Kind, a, b)
		}
	}
	if pt, _ := agentapi.Encode(msgs[0]); pt != "hello @assistant" {
		t.Errorf("plain text encoded as %q", pt)
	}
	for name, pt := range map[string]string{
		"unknown kind":     agentapi.MessagePrefix + `{"kind":"agent.other"}`,
		"two fields":       agentapi.MessagePrefix + `{"kind":"text","text":"x","reply":{"text":"","receipt":null}}`,
		"grant without":    agentapi.MessagePrefix + `{"kind":"agent.grant"}`,
		"trailing data":    agentapi.MessagePrefix + `{"kind":"text"} {}`,
		"duplicate member": agentapi.MessagePrefix + `{"kind":"text","kind":"text"}`,
		"reply no receipt": agentapi.MessagePrefix + `{"kind":"agent.reply","reply":{"text":"x"}}`,
	} {
		if _, err := agentapi.ParseMessage(pt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReceiptVerify(t *testing.T) {
	_, d := newDevice(t)
	_, other := newDevice(t)
	alice, _ := newDevice(t)
	cfg := testConfig()
	r := &agentapi.Receipt{Version: 1, ConfigSHA256: cfg.Digest(), Conversation: strings.Repeat("ab", 16), InReplyTo: strings.Repeat("cd", 16), At: 5,
		Read:        []agentapi.ReadMessage{{ID: strings.Repeat("cd", 16), Sender: alice.Address(), SHA256: agentapi.Sum([]byte("list my notes"))}},
		Tools:       []agentapi.ToolCall{{Tool: "notes_list_notes", ArgumentsSHA256: agentapi.Sum([]byte("{}")), ResultSHA256: agentapi.Sum([]byte("r")), Outcome: "ok"}},
		ReplySHA256: agentapi.Sum([]byte("You have 2 notes."))}
	r.Sign(d)
	ev := &agentapi.Evidence{Config: cfg}
	if err := agentapi.VerifyReceipt(r, "You have 2 notes.", &d.Cert, ev); err != nil {
		t.Fatalf("valid receipt refused: %v", err)
	}
	wantCheck(t, agentapi.VerifyReceipt(r, "You have 3 notes.", &d.Cert, ev), agentapi.CheckSignature)
	wantCheck(t, agentapi.VerifyReceipt(r, "You have 2 notes.", &other.Cert, ev), agentapi.CheckSignature)
	cfg2 := cfg
	cfg2.SystemPrompt = "changed"
	wantCheck(t, agentapi.VerifyReceipt(r, "You have 2 notes.", &d.Cert, &agentapi.Evidence{Config: cfg2}), agentapi.CheckConfig)
	tampered := *r
	tampered.Tools = append([]agentapi.ToolCall(nil), r.Tools...)
	tampered.Tools[0].Tool = "notes_delete_note"
	wantCheck(t, agentapi.VerifyReceipt(&tampered, "You have 2 notes.", &d.Cert, ev), agentapi.CheckSignature)
	dropped := *r
	dropped.Read = nil
	wantCheck(t, agentapi.VerifyReceipt(&dropped, "You have 2 notes.", &d.Cert, ev), agentapi.CheckSignature)
}

func TestApprovalStatement(t *testing.T) {
	alice, d := newDevice(t)
	bob, bobDev := newDevice(t)
	now := time.Now()
	id := strings.Repeat("0a", 16)
	args := agentapi.Sum([]byte(`{"name":"todo"}`))
	s, err := agentapi.NewApprovalStatement(d, id, args, agentapi.Approve, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := jsonv2.Marshal(s)
	p, err := agentapi.ParseApprovalStatement(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(now); err != nil {
		t.Fatalf("valid statement refused: %v", err)
	}
	if !p.Approver.Equal(alice.Address()) {
		t.Errorf("approver %s, want %s", p.Approver, alice.Address())
	}
	t.Run("expired", func(t *testing.T) { wantCheck(t, p.Verify(now.Add(2*time.Minute)), agentapi.CheckExpired) })
	t.Run("too far ahead", func(t *testing.T) {
		s, _ := agentapi.NewApprovalStatement(d, id, args, agentapi.Approve, now.Add(time.Hour))
		wantCheck(t, s.Verify(now), agentapi.CheckExpired)
	})
	t.Run("decision flipped", func(t *testing.T) {
		f := *p
		f.Decision = agentapi.Deny
		wantCheck(t, f.Verify(now), agentapi.CheckSignature)
	})
	t.Run("arguments changed", func(t *testing.T) {
		f := *p
		f.ArgumentsSHA256 = agentapi.Sum([]byte(`{"name":"other"}`))
		wantCheck(t, f.Verify(now), agentapi.CheckSignature)
	})
	t.Run("bob claims to be alice", func(t *testing.T) {
		f, _ := agentapi.NewApprovalStatement(bobDev, id, args, agentapi.Approve, now.Add(time.Minute))
		f.Approver = alice.Address()
		wantCheck(t, f.Verify(now), agentapi.CheckApprover)
	})
	t.Run("bob's own statement names bob", func(t *testing.T) {
		f, _ := agentapi.NewApprovalStatement(bobDev, id, args, agentapi.Approve, now.Add(time.Minute))
		if err := f.Verify(now); err != nil || !f.Approver.Equal(bob.Address()) {
			t.Fatalf("bob's statement: %v, approver %s", err, f.Approver)
		}
	})
	t.Run("forged device certificate", func(t *testing.T) {
		f := *p
		f.Device.Signing = bobDev.Cert.Signing
		wantCheck(t, f.Verify(now), agentapi.CheckCertificate)
	})
	t.Run("bad decision", func(t *testing.T) {
		_, err := agentapi.NewApprovalStatement(d, id, args, "maybe", now.Add(time.Minute))
		wantCheck(t, err, agentapi.CheckMalformed)
	})
	t.Run("receipt signature is not a statement signature", func(t *testing.T) {
		if envelope.VerifyDomain(d.Cert.Signing, agentapi.TagReceipt, []byte("x"), d.SignDomain(agentapi.TagApproval, []byte("x"))) {
			t.Fatal("a signature under one tag verifies under another")
		}
	})
}

// ArgumentsSHA256 is the gateway's hash: keys sorted, numbers as written,
// no white space; refused input is refused.
func TestArgumentsSHA256(t *testing.T) {
	a, err := agentapi.ArgumentsSHA256([]byte(`{ "text": "buy milk", "name": "todo", "n": 1.50 }`))
	if err != nil {
		t.Fatal(err)
	}
	if a != agentapi.Sum([]byte(`{"n":1.50,"name":"todo","text":"buy milk"}`)) {
		t.Errorf("hash %s is not over the canonical form", a)
	}
	empty, _ := agentapi.ArgumentsSHA256(nil)
	null, _ := agentapi.ArgumentsSHA256([]byte("null"))
	if empty != agentapi.Sum([]byte("{}")) || null != empty {
		t.Error("absent or null arguments do not hash as {}")
	}
	for _, bad := range []string{`[]`, `{"a":1,"a":2}`, `{"a":1} x`, "{\"a\":\"\xff\"}"} {
		if _, err := agentapi.ArgumentsSHA256([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestApprovalRequestVerifyArguments: an approver's client shows and signs
// only a request whose arguments are canonical and hash to the
// arguments_sha256 it asks to sign.
func TestApprovalRequestVerifyArguments(t *testing.T) {
	canon, err := agentapi.CanonicalArguments([]byte(`{ "text": "buy milk", "name": "todo" }`))
	if err != nil {
		t.Fatal(err)
	}
	if string(canon) != `{"name":"todo","text":"buy milk"}` {
		t.Fatalf("canonical arguments %s", canon)
	}
	other, _ := agentapi.ArgumentsSHA256([]byte(`{"name":"todo","text":"rm -rf"}`))
	for _, tt := range []struct {
		name, args string
		sum        agentapi.Digest
		ok         bool
	}{
		{"genuine", string(canon), agentapi.Sum(canon), true},
		{"hash of another call", string(canon), other, false},
		{"not canonical", `{"text":"buy milk","name":"todo"}`, agentapi.Sum(canon), false},
		{"not an object", `write todo`, agentapi.Sum([]byte("write todo")), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &agentapi.ApprovalRequest{ID: strings.Repeat("ab", 16), Arguments: tt.args, ArgumentsSHA256: tt.sum}
			err := r.VerifyArguments()
			if (err == nil) != tt.ok {
				t.Fatalf("VerifyArguments = %v, want ok %v", err, tt.ok)
			}
			if c, _ := agentapi.CheckOf(err); !tt.ok && c != agentapi.CheckArguments {
				t.Errorf("check %q, want %q", c, agentapi.CheckArguments)
			}
		})
	}
}
