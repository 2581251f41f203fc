// Command chatmcp-kbs is the ChatMCP key broker daemon (see docs/kbs.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/chatmcp/chatmcp/kbs/daemon"
)

func main() {
	var o daemon.Options
	flag.StringVar(&o.Listen, "listen", "127.0.0.1:8743", "TCP address to serve on")
	flag.StringVar(&o.Data, "data", "", "data directory (created 0700; holds store, admin.token, keys, audit.jsonl)")
	flag.StringVar(&o.DB, "db", "", "postgres:// DSN (default: SQLite in the data directory)")
	flag.BoolVar(&o.Dev, "dev", false, "INSECURE: plain HTTP on loopback, accept simulated evidence")
	flag.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate PEM (without --dev)")
	flag.StringVar(&o.TLSKey, "tls-key", "", "TLS private key PEM (without --dev)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, &o); err != nil {
		fmt.Fprintln(os.Stderr, "chatmcp-kbs: error:", err)
		os.Exit(1)
	}
}
