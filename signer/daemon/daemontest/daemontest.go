// Package daemontest runs a real chatmcp-signer in-process for other
// packages' tests (its daemon.Run with --dev: the INSECURE simulated TEE),
// its key fetched from the caller's KBS. Not for production.
package daemontest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/kbsclient"
	"github.com/chatmcp/chatmcp/signer"
	"github.com/chatmcp/chatmcp/signer/daemon"
)

// Signer is a running signer.
type Signer struct {
	// URL is https://127.0.0.1:PORT (RA-TLS, simulated evidence of this
	// process).
	URL string
	// Data is its data directory (admin.token, audit.jsonl, the ledger).
	Data string
}

// AdminToken reads the signer's admin token.
func (s *Signer) AdminToken(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Data, daemon.FileAdminToken))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Start runs a signer until t ends. The KBS at kbsURL must release the
// secret keySecret (a solana-keygen keypair) to this process's simulated
// measurement; policy is the YAML of the config's policy: block, its
// lines unindented (docs/payments.md). approval_timeout is 30 s.
func Start(t testing.TB, kbsURL, keySecret, policy string) *Signer {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "signer.yaml")
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\ndata: ./signer-data\nkbs: %s\nkey: {secret: %s}\napproval_timeout: 30s\npolicy:\n  %s\n",
		kbsURL, keySecret, strings.ReplaceAll(strings.TrimSpace(policy), "\n", "\n  "))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := signer.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	log := &buffer{}
	go func() {
		done <- daemon.Run(ctx, &daemon.Options{Config: c, Dev: true, Stderr: log, Deps: daemon.Deps{
			Ready: func(a net.Addr) { ready <- a },
			NewSecretSource: func(url string, a attest.Attester) (daemon.SecretSource, error) {
				return &kbsclient.Client{BaseURL: url, Attester: a}, nil
			}}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("signer: %v", err)
		}
	})
	select {
	case a := <-ready:
		return &Signer{URL: "https://" + a.String(), Data: filepath.Join(dir, "signer-data")}
	case err := <-done:
		t.Fatalf("signer: %v\n%s", err, log.String())
	}
	return nil
}

// buffer is a strings.Builder safe for concurrent use.
type buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var _ io.Writer = (*buffer)(nil)
