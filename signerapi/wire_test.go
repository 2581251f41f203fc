package signerapi_test

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/internal/golden"
	"github.com/chatmcp/chatmcp/signerapi"
)

var update = flag.Bool("update", false, "rewrite testdata/wire.txtar from the wire types")

// TestWireFormat pins the JSON of every body of the signer's API and its
// error body in testdata/wire.txtar; `go test ./signerapi -update`
// refreshes it.
func TestWireFormat(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fill := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	const (
		hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
		addr = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
		sig  = "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW"
	)
	cases := []golden.Case{
		{Name: "GET " + signerapi.PathPubkey + " response", Value: signerapi.Pubkey{PublicKey: addr, Audience: "chatmcp-signer:" + addr, FeePayerOnly: true, Dev: true}},
		{Name: "POST " + signerapi.PathSign + " request", Value: signerapi.SignRequest{Transaction: fill(40, 1)}},
		{Name: "POST " + signerapi.PathSign + " response", Value: signerapi.SignResponse{Transaction: fill(40, 2), Signature: sig, Amount: 1000000, Approval: "0123456789abcdef0123456789abcdef"}},
		{Name: "POST " + signerapi.PathSignMessage + " request", Value: signerapi.SignMessageRequest{Message: []byte(signerapi.OffchainMessagePrefix + "hi")}},
		{Name: "POST " + signerapi.PathSignMessage + " response", Value: signerapi.SignMessageResponse{Signature: sig}},
		{Name: "POST " + signerapi.PathTokens + " request", Value: signerapi.MintRequest{Budget: "5000000/24h", TTL: "24h", Subject: "agent"}},
		{Name: "POST " + signerapi.PathTokens + " response", Value: signerapi.MintResponse{ID: "0123456789abcdef0123456789abcdef", Token: "cmt1.example", Expires: at}},
		{Name: "GET " + signerapi.PathApprovals + " response", Value: []signerapi.Approval{{ID: "0123456789abcdef0123456789abcdef", Principal: "subject:agent", Amount: 2500000,
			Mint: addr, Recipient: addr, Signature: sig, MessageSHA256: hash, Approver: addr, Created: at, Expires: at.Add(5 * time.Minute)}}},
		{Name: "POST " + signerapi.PathRelease + " request", Value: signerapi.ReleaseRequest{Signature: sig}},
		{Name: "POST " + signerapi.PathRelease + " response", Value: signerapi.Reservation{Signature: sig, Principal: "subject:agent", Amount: 1000000, State: "released", Created: at}},
		{Name: "GET " + signerapi.PathBudget + " response", Value: signerapi.Budget{Period: "24h0m0s", Max: 3000000, Reserved: 1000000}},
		{Name: "refusal", Value: signerapi.ErrorBody{Error: "refused by policy rule max_per_tx: 1000001 base units exceed max_per_tx 1000000", Reason: signerapi.RuleMaxPerTx}},
	}
	golden.Check(t, "testdata/wire.txtar", "The JSON bodies of chatmcp-signer's API (package signerapi, docs/payments.md).\nRefresh with: go test ./signerapi -update\n", cases, *update)
}

// TestRules: every rule is a distinct reason code, IsRule knows exactly
// them, and no other reason code is taken for a rule.
func TestRules(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range signerapi.Rules() {
		if seen[r] || !signerapi.IsRule(r) {
			t.Errorf("rule %q repeated or unknown to IsRule", r)
		}
		seen[r] = true
	}
	for _, r := range []string{signerapi.ReasonMalformedTransaction, signerapi.ReasonUnauthorized, signerapi.ReasonInternal, signerapi.ReasonNotPending, ""} {
		if signerapi.IsRule(r) {
			t.Errorf("%q is taken for a policy rule", r)
		}
	}
}
