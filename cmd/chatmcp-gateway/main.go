// Command chatmcp-gateway is the attested MCP gateway (docs/gateway.md).
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/devices"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/gateway/daemon"
	"github.com/chatmcp/chatmcp/kbsclient"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// Each call allocates in two MCP codecs (server and client side);
		// a live heap of a few MiB makes the default GOGC=100 collect
		// constantly. 400 trades some MiB of RAM for about a fifth less
		// latency (docs/BENCHMARKS.md). GOGC in the environment wins.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := daemon.Main(ctx, os.Args[1:], os.Stderr, daemon.Deps{
		Detect: func() (attest.Attester, error) { return devices.Detect(nil) },
		NewSecretSource: func(url string, a attest.Attester) (gateway.SecretSource, error) {
			return &kbsclient.Client{BaseURL: url, Attester: a}, nil
		},
	})
	stop()
	os.Exit(code)
}
