package agentapi_test

import (
	"time"

	"testing"

	"github.com/chatmcp/chatmcp/agentapi"
)

func FuzzParseMessage(f *testing.F) {
	f.Add("hello")
	f.Add(agentapi.MessagePrefix + `{"kind":"agent.grant","grant":{"token":"t","approver":"11111111111111111111111111111111","agent":"11111111111111111111111111111111","tools":["x"],"expires":"2030-01-01T00:00:00Z","conversation":"00000000000000000000000000000000"}}`)
	f.Add(agentapi.MessagePrefix + `{"kind":"agent.reply","reply":{"text":"x","receipt":{"version":1}}}`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := agentapi.ParseMessage(s)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed message fails Validate: %v", err)
		}
		if r := m.ApprovalRequest; r != nil && r.VerifyArguments() == nil {
			if sum, err := agentapi.ArgumentsSHA256([]byte(r.Arguments)); err != nil || sum != r.ArgumentsSHA256 {
				t.Fatalf("arguments check passed a request whose arguments hash to %v (%v), not %v", sum, err, r.ArgumentsSHA256)
			}
		}
		pt, err := agentapi.Encode(m)
		if err != nil {
			t.Fatalf("parsed message does not encode: %v", err)
		}
		if _, err := agentapi.ParseMessage(pt); err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
	})
}

func FuzzParseEvidence(f *testing.F) {
	f.Add([]byte(`{"evidence":{"version":1,"tee":"sim","report":"AA=="},"config":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := agentapi.ParseEvidence(b)
		if err != nil {
			return
		}
		if err := e.Config.Validate(); err != nil {
			t.Fatalf("parsed evidence has an invalid configuration: %v", err)
		}
	})
}

func FuzzParseApprovalStatement(f *testing.F) {
	f.Add([]byte(`{"approval_id":"00000000000000000000000000000000","arguments_sha256":"` + agentapi.Sum(nil).String() + `","decision":"approve","expires":1,"approver":"11111111111111111111111111111111","device":{},"sig":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := agentapi.ParseApprovalStatement(b)
		if err != nil {
			return
		}
		if s.Verify(time.UnixMilli(s.Expires-1)) == nil && s.Approver.IsZero() {
			t.Fatal("verified a statement without an approver")
		}
	})
}

func FuzzArgumentsSHA256(f *testing.F) {
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := agentapi.ArgumentsSHA256(b)
		if err == nil && d.IsZero() {
			t.Fatal("accepted arguments hash to zero")
		}
		if err != nil {
			return
		}
		// Canonical form is a fixed point: an approver's client re-checks
		// the canonical bytes an agent posts.
		c, err := agentapi.CanonicalArguments(b)
		if err != nil {
			t.Fatalf("CanonicalArguments refuses what ArgumentsSHA256 accepts: %v", err)
		}
		c2, err := agentapi.CanonicalArguments(c)
		if err != nil || string(c2) != string(c) || agentapi.Sum(c) != d {
			t.Fatalf("canonical form %q is not a fixed point (%q, %v)", c, c2, err)
		}
	})
}
