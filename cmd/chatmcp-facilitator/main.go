// Command chatmcp-facilitator verifies and settles x402 `exact` payments
// on Solana, exactly once. See docs/payments.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/chatmcp/chatmcp/facilitator/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := daemon.Main(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
