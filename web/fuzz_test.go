package web

import (
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/wallet"
)

// FuzzSignInBodies feeds the wallet sign-in's JSON bodies (from the
// browser) through their decoders: no panic, and a signature is accepted
// only as exactly 64 bytes.
func FuzzSignInBodies(f *testing.F) {
	f.Add([]byte(`{"address":"11111111111111111111111111111111"}`))
	f.Add([]byte(`{"signature":"` + strings.Repeat("A", 86) + `=="}`))
	f.Add([]byte(`{"signature":1,"signature":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var st walletStartRequest
		wire.Decode(b, &st)
		var sr walletSignRequest
		if wire.Decode(b, &sr) == nil {
			if sig, err := decodeSig(sr.Signature); err == nil && len(sig) != 64 {
				t.Fatalf("accepted a %d-byte signature", len(sig))
			}
		}
	})
}

// FuzzForms feeds form values through the parsers of member lists, tool
// patterns and lists.
func FuzzForms(f *testing.F) {
	f.Add("4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi, notes_*")
	f.Add("[, \n\t")
	f.Fuzz(func(t *testing.T, s string) {
		if ms, err := parseMembers(s); err == nil && len(ms) == 0 {
			t.Fatal("no members and no error")
		}
		if ps, err := parseToolPatterns(s); err == nil && len(ps) == 0 {
			t.Fatal("no tool patterns and no error")
		}
		splitList(s)
	})
}

// FuzzAssistantMessages feeds message plaintexts (any member can write
// them) through what the pages and live updates show of them.
func FuzzAssistantMessages(f *testing.F) {
	var sum agentapi.Digest
	sum[0] = 1
	w, _ := wallet.ParseAddress("4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi")
	for _, m := range []*agentapi.Message{
		{Kind: agentapi.KindText, Text: "hello"},
		{Kind: agentapi.KindApprovalRequest, ApprovalRequest: &agentapi.ApprovalRequest{ID: strings.Repeat("ab", 16), Gateway: "https://g", Tool: "t", Arguments: "{}",
			ArgumentsSHA256: sum, RequestedBy: w, Expires: time.Unix(1e9, 0)}},
	} {
		text, err := agentapi.Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(text)
	}
	f.Add(agentapi.MessagePrefix + `{"kind":"agent.reply","reply":{"text":"x"}}`)
	f.Fuzz(func(t *testing.T, text string) {
		v := msgView{}
		decorate(&v, chat.Message{Text: text, Sender: w})
		liveText(text)
		if v.Agent != nil && v.State != "" {
			t.Fatal("a message both structured and rejected")
		}
	})
}
