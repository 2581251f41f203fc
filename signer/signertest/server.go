package signertest

import (
	"context"
	"crypto/ed25519"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/signer"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
)

// Serve serves a real signer (package signer, over loopback HTTP: its
// RA-TLS is the daemon's and tested there) holding key under policy, with
// a SQLite ledger and an audit log in temporary directories, and returns a
// client whose token has the given budget ("" for none).
func Serve(t testing.TB, key ed25519.PrivateKey, policy, budget string) *signerclient.Client {
	t.Helper()
	ctx := context.Background()
	kp, err := wallet.NewKeypair(key)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := signer.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := signer.OpenLedger(ctx, storetest.SQLite(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	akey, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(ctx, filepath.Join(dir, "audit.jsonl"), &audit.Options{Signer: akey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	s, err := signer.New(&signer.Options{Key: kp, Policy: pol, Ledger: ledger, Audit: alog})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := captoken.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	const admin = "0123456789abcdef0123456789abcdef"
	srv := httptest.NewServer(signer.Handler(&signer.ServerOptions{Signer: s, TokenKey: tk, Audience: "signer", AdminToken: admin}))
	t.Cleanup(srv.Close)
	m, err := (&signerclient.Admin{Client: signerclient.Client{BaseURL: srv.URL, Token: admin}}).Mint(ctx, signerapi.MintRequest{Budget: budget, Subject: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return &signerclient.Client{BaseURL: srv.URL, Token: m.Token}
}
