package cli

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gagliardetto/solana-go"

	"github.com/chatmcp/chatmcp/facilitator"
	"github.com/chatmcp/chatmcp/internal/svmtest"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/x402"
)

// TestChatPrice: bob sets a price with `chatmcp chat price`; alice's
// `chat send --pay-max` pays it from her chat wallet instead of 30 bits of
// proof of work, through a relay that settles on a real facilitator on
// litesvm (TEST runtime); the money moves once.
func TestChatPrice(t *testing.T) {
	s := svmtest.Start(t)
	mint, mintAuth := s.NewMint(t, 6)
	_, fp := svmtest.NewKey(t)
	s.Fund(t, svmtest.PublicKey(fp), 1_000_000_000)
	fac, err := facilitator.New(context.Background(), storetest.SQLite(t), &facilitator.Options{Network: x402.SolanaLocal, RPC: s.RPC, FeePayer: facilitator.LocalKey{Key: fp}})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	fsrv := &http.Server{Handler: fac.Handler()}
	go fsrv.Serve(ln)
	t.Cleanup(func() { fsrv.Close() })
	ts := httptest.NewUnstartedServer(nil)
	srv, err := relay.New(context.Background(), storetest.SQLite(t), &relay.Options{Domain: ts.Listener.Addr().String(), DefaultDifficulty: 30,
		Payments: &stamp.Payment{Facilitator: &x402.FacilitatorClient{URL: "http://" + ln.Addr().String()}, FeePayer: svmtest.PublicKey(fp).String(), Network: x402.SolanaLocal, Assets: []string{mint.String()}}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv
	ts.Start()
	t.Cleanup(ts.Close)

	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	addr := map[string]solana.PublicKey{}
	for _, name := range []string{"alice", "bob"} {
		a := strings.TrimSpace(ok(t, "wallet", "new", "-o", filepath.Join(dir, name+".json")))
		addr[name] = solana.MustPublicKeyFromBase58(a)
	}
	as := func(name string, args ...string) []string {
		return append(args, "--relay", ts.URL, "--wallet", filepath.Join(dir, name+".json"), "--home", home)
	}
	aliceATA := s.CreateATA(t, addr["alice"], mint)
	bobATA := s.CreateATA(t, addr["bob"], mint)
	s.MintTo(t, mint, mintAuth, aliceATA, 100_000)
	ok(t, as("bob", "chat", "login")...)
	if code, _, errs := run(t, as("bob", "chat", "price", "--amount", "0", "--asset", mint.String())...); code != ExitUsage || !strings.Contains(errs, "zero") {
		t.Errorf("a zero price: exit %d: %s", code, errs)
	}
	if out := ok(t, as("bob", "chat", "price", "--amount", "40000", "--asset", mint.String(), "--network", x402.SolanaLocal)...); !strings.HasPrefix(out, "price set: 40000 of "+mint.String()) {
		t.Errorf("price: %q", out)
	}
	out := ok(t, as("alice", "chat", "send", "--to", addr["bob"].String(), "hello, paid", "--pay-max", "50000", "--pay-asset", mint.String(), "--pay-rpc", s.URL, "--pay-network", x402.SolanaLocal)...)
	if !strings.Contains(out, "has not accepted you") {
		t.Errorf("paid send printed %q", out)
	}
	if a, b := s.Balance(t, aliceATA), s.Balance(t, bobATA); a != 60_000 || b != 40_000 {
		t.Fatalf("balances alice %d bob %d, want 60000 and 40000", a, b)
	}
	if out := ok(t, as("bob", "chat", "requests")...); !strings.Contains(out, "hello, paid") {
		t.Errorf("bob's requests: %q", out)
	}
	if out := ok(t, as("bob", "chat", "price", "--none")...); !strings.HasPrefix(out, "price removed") {
		t.Errorf("price --none: %q", out)
	}
}
