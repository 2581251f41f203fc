package daemon_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/facilitator/daemon"
	"github.com/chatmcp/chatmcp/internal/svmtest"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/x402"
)

// TestRun starts chatmcp-facilitator's Run on loopback against litesvm
// (TEST runtime), with its fee payer from a keypair file, and settles a
// payment through the HTTP API with the token from its data directory;
// without the token it refuses.
func TestRun(t *testing.T) {
	s := svmtest.Start(t)
	dir := t.TempDir()
	_, fpKey := svmtest.NewKey(t)
	kp, err := wallet.NewKeypair(fpKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "fee-payer.json")
	if err := kp.WriteFile(keyPath); err != nil {
		t.Fatal(err)
	}
	s.Fund(t, svmtest.PublicKey(fpKey), 1_000_000_000)
	mint, auth := s.NewMint(t, 6)
	_, payer := svmtest.NewKey(t)
	payTo, _ := svmtest.NewKey(t)
	src := s.CreateATA(t, svmtest.PublicKey(payer), mint)
	dst := s.CreateATA(t, payTo, mint)
	s.MintTo(t, mint, auth, src, 1_000_000)

	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- daemon.Run(ctx, &daemon.Options{Listen: "127.0.0.1:0", Data: filepath.Join(dir, "data"), RPC: s.URL,
			Network: x402.SolanaLocal, FeePayerKey: keyPath, Dev: true, Stderr: &stderr, Ready: func(a net.Addr) { addr <- a }})
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	tok, err := os.ReadFile(filepath.Join(dir, "data", daemon.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	c := &x402.FacilitatorClient{URL: url, Token: strings.TrimSpace(string(tok))}
	sup, err := c.Supported(ctx)
	if err != nil || sup.Kinds[0].Extra.FeePayer != kp.Address().String() {
		t.Fatalf("supported: %+v, %v", sup, err)
	}
	req := &x402.PaymentRequirements{Scheme: x402.SchemeExact, Network: x402.SolanaLocal, Amount: "4200", Asset: mint.String(),
		PayTo: payTo.String(), MaxTimeoutSeconds: 60, Extra: &x402.Extra{FeePayer: sup.Kinds[0].Extra.FeePayer}}
	p, err := x402.PayExact(req, nil, svmtest.PublicKey(payer), x402.KeySigner(payer), 6, s.Blockhash(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&x402.FacilitatorClient{URL: url}).Settle(ctx, p, req); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("settle without the token: %v", err)
	}
	r, err := c.Settle(ctx, p, req)
	if err != nil || !r.Success {
		t.Fatalf("settle: %+v, %v", r, err)
	}
	if got := s.Balance(t, dst); got != 4200 {
		t.Fatalf("recipient holds %d, want 4200", got)
	}
}

// TestMainUsage: missing required flags exit 1 naming the flag.
func TestMainUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--dev"}, "--data DIR is required"},
		{[]string{"--dev", "--data", t.TempDir()}, "--rpc URL is required"},
		{[]string{"--dev", "--data", t.TempDir(), "--rpc", "http://127.0.0.1:1"}, "--network CAIP2 is required"},
		{[]string{"--dev", "--data", t.TempDir(), "--rpc", "http://127.0.0.1:1", "--network", x402.SolanaDevnet}, "exactly one of --fee-payer-key FILE"},
		{[]string{"--data", t.TempDir(), "--rpc", "http://127.0.0.1:1", "--network", x402.SolanaDevnet, "--fee-payer-key", "/nonexistent"}, "--tls-cert and --tls-key are required"},
		{[]string{"--dev", "--data", t.TempDir(), "--rpc", "http://127.0.0.1:1", "--network", x402.SolanaDevnet, "--fee-payer-key", "k.json", "--fee-payer-signer", "https://127.0.0.1:2"}, "exactly one of --fee-payer-key"},
		{[]string{"--dev", "--data", t.TempDir(), "--rpc", "http://127.0.0.1:1", "--network", x402.SolanaDevnet, "--fee-payer-signer", "https://127.0.0.1:2"}, "needs --fee-payer-token-file and --signer-policy"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		var stderr bytes.Buffer
		if code := daemon.Main(context.Background(), c.args, &stderr); code != 1 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("Main(%q) = %d, %q; want 1 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}
