package signer_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/signer"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/store/storetest"
)

// TestServerRefusals reaches every refusal of the HTTP API that is not a
// policy rule, each with its reason code, through the real client.
func TestServerRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storetest.SQLite(t), "", time.Minute)
	const adminToken = "0123456789abcdef0123456789abcdef"
	srv := httptest.NewServer(signer.Handler(&signer.ServerOptions{Signer: f.s, TokenKey: f.tokKey, Audience: "signer", AdminToken: adminToken}))
	t.Cleanup(srv.Close)
	admin := &signerclient.Admin{Client: signerclient.Client{BaseURL: srv.URL, Token: adminToken}}
	m, err := admin.Mint(ctx, signerapi.MintRequest{Budget: "5000000/24h", Subject: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := captoken.Parse(m.Token); len(p.Blocks) != 2 || p.Blocks[1].Budget == nil || p.Blocks[1].Budget.Amount != 5000000 {
		t.Fatalf("minted token has no budget caveat: %+v", p)
	}
	agent := &signerclient.Client{BaseURL: srv.URL, Token: m.Token}
	if _, err := agent.SignTransaction(ctx, f.pay(t, 1000)); err != nil {
		t.Fatalf("sign with the minted token: %v", err)
	}
	pk, err := agent.Pubkey(ctx)
	if err != nil || pk.PublicKey != f.payer.String() || pk.Audience != "signer" {
		t.Fatalf("pubkey %+v, %v", pk, err)
	}
	wrongAdmin := &signerclient.Admin{Client: signerclient.Client{BaseURL: srv.URL, Token: "nope"}}
	noToken := &signerclient.Client{BaseURL: srv.URL}
	foreign, _ := captoken.NewKey()
	ftok, _ := captoken.Mint(foreign, captoken.Claims{Audience: "signer", Tools: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	for _, tc := range []struct {
		name, reason string
		call         func() error
	}{
		{"admin without its token", signerapi.ReasonUnauthorized, func() error { _, err := wrongAdmin.Mint(ctx, signerapi.MintRequest{}); return err }},
		{"sign without a token", signerapi.ReasonUnauthorized, func() error { _, err := noToken.SignTransaction(ctx, f.pay(t, 1)); return err }},
		{"sign with another key's token", signerapi.ReasonUnauthorized, func() error {
			_, err := (&signerclient.Client{BaseURL: srv.URL, Token: ftok}).SignTransaction(ctx, f.pay(t, 1))
			return err
		}},
		{"bad budget", signerapi.ReasonBadBudget, func() error { _, err := admin.Mint(ctx, signerapi.MintRequest{Budget: "5/ever"}); return err }},
		{"bad ttl", signerapi.ReasonBadTTL, func() error { _, err := admin.Mint(ctx, signerapi.MintRequest{TTL: "9999h"}); return err }},
		{"unknown approval", signerapi.ReasonNotPending, func() error { return admin.Decide(ctx, "nope", true) }},
		{"unknown reservation", signerapi.ReasonNotPending, func() error { _, err := admin.Release(ctx, "nope"); return err }},
		{"bad revocation id", signerapi.ReasonBadID, func() error { return admin.Revoke(ctx, "xyz") }},
		{"malformed transaction", signerapi.ReasonMalformedTransaction, func() error { _, err := agent.SignTransaction(ctx, []byte{1, 2, 3}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r, _ := signerclient.ReasonOf(tc.call()); r != tc.reason {
				t.Fatalf("reason %q, want %q", r, tc.reason)
			}
		})
	}
	for _, tc := range []struct {
		name, method, path, body, reason string
		status                           int
	}{
		{"unknown path", "GET", "/nope", "", signerapi.ReasonNotFound, 404},
		{"wrong method", "GET", signerapi.PathSign, "", signerapi.ReasonMethod, 405},
		{"unknown member", "POST", signerapi.PathSign, `{"transaction":"","x":1}`, signerapi.ReasonMalformed, 400},
		{"too large", "POST", signerapi.PathSign, `{"transaction":"` + strings.Repeat("A", signerapi.MaxBody) + `"}`, signerapi.ReasonTooLarge, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+m.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body signerapi.ErrorBody
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body.Reason != tc.reason {
				t.Fatalf("status %d reason %q, want %d %q", resp.StatusCode, body.Reason, tc.status, tc.reason)
			}
		})
	}
	// Revoking the minted token's id refuses it and every token
	// attenuated from it; the release of a live reservation works once.
	child, _ := captoken.Attenuate(m.Token, captoken.Caveat{Tools: []string{"sign_transaction"}})
	resp, err := agent.SignTransaction(ctx, f.pay(t, 2000))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := admin.Release(ctx, resp.Signature); err != nil || r.Amount != 2000 || r.State != signer.StateReleased {
		t.Fatalf("release: %+v, %v", r, err)
	}
	if _, err := admin.Release(ctx, resp.Signature); err == nil {
		t.Fatal("released twice")
	}
	p, _ := captoken.Parse(m.Token)
	if err := admin.Revoke(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{m.Token, child} {
		_, err := (&signerclient.Client{BaseURL: srv.URL, Token: tok}).SignTransaction(ctx, f.pay(t, 1))
		if r, _ := signerclient.ReasonOf(err); r != signerapi.ReasonUnauthorized || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("revoked token: %v", err)
		}
	}
}
