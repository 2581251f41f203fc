// Command chatmcp-gateway is the attested MCP gateway (docs/gateway.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/devices"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/kbsclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	kbsClient := func(url string, a attest.Attester) (gateway.SecretSource, error) {
		return &kbsclient.Client{BaseURL: url, Attester: a}, nil
	}
	detect := func() (attest.Attester, error) { return devices.Detect(nil) }
	if err := gateway.Run(ctx, os.Args[1:], os.Stderr, gateway.Deps{NewSecretSource: kbsClient, Detect: detect}); err != nil {
		fmt.Fprintln(os.Stderr, "chatmcp-gateway: error:", err)
		os.Exit(1)
	}
}
