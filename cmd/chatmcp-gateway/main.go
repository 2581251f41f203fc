// Command chatmcp-gateway is the attested MCP gateway (docs/gateway.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/chatmcp/chatmcp/gateway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := gateway.Run(ctx, os.Args[1:], os.Stderr, gateway.Deps{}); err != nil {
		fmt.Fprintln(os.Stderr, "chatmcp-gateway: error:", err)
		os.Exit(1)
	}
}
