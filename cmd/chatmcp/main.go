// Command chatmcp is the one command people type: attestation tools, key
// broker and gateway administration, the chat client, connect and dev.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/chatmcp/chatmcp/cmd/chatmcp/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], &cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
