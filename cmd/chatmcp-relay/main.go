// Command chatmcp-relay stores and forwards end-to-end encrypted ChatMCP
// messages. See docs/messaging.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/chatmcp/chatmcp/relay/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := daemon.Main(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
