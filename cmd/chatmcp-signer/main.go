// Command chatmcp-signer holds Solana keys in a TEE and signs only what its
// policy allows (docs/payments.md).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/devices"
	"github.com/chatmcp/chatmcp/kbsclient"
	"github.com/chatmcp/chatmcp/signer/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := daemon.Main(ctx, os.Args[1:], os.Stderr, daemon.Deps{
		Detect: func() (attest.Attester, error) { return devices.Detect(nil) },
		NewSecretSource: func(url string, a attest.Attester) (daemon.SecretSource, error) {
			return &kbsclient.Client{BaseURL: url, Attester: a}, nil
		},
	})
	stop()
	os.Exit(code)
}
