// Command chatmcp-kbs is the ChatMCP key broker daemon (see docs/kbs.md).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/chatmcp/chatmcp/kbs/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := daemon.Main(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
