package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/devices"
	"github.com/chatmcp/chatmcp/internal/daemon"
	"github.com/chatmcp/chatmcp/internal/ops"
)

// Main parses the chatmcp-kbs command line (without the program name), runs
// the daemon until ctx is done and returns the process exit code. It uses
// its own flag set, so flags that libraries register on the global one
// (go-sev-guest registers some) never appear on the daemon's command line.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs, of := daemon.FlagSet("chatmcp-kbs", stderr)
	var o Options
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8743", "TCP address to serve on")
	fs.StringVar(&o.Data, "data", "", "data directory (created 0700; holds store, admin.token, keys, audit.jsonl)")
	fs.StringVar(&o.DB, "db", "", "postgres:// DSN (default: SQLite in the data directory)")
	fs.BoolVar(&o.Dev, "dev", false, "INSECURE: plain HTTP on loopback, accept simulated evidence")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate PEM (without --dev)")
	fs.StringVar(&o.TLSKey, "tls-key", "", "TLS private key PEM (without --dev)")
	tee := fs.String("tee", "", "TEE device for the RA-TLS certificate: sevsnp, tdx, nitro or tpm (default: the first device found)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chatmcp-kbs: error: unexpected argument %q\n", fs.Arg(0))
		return 1
	}
	o.Stderr = stderr
	var err error
	o.Readiness = ops.NewReadiness(ReadinessChecks()...)
	var stop func()
	if o.Logger, stop, err = daemon.StartOps("chatmcp-kbs", stderr, of, o.Readiness, func(reg *ops.Registry) { o.Metrics = ops.NewKBS(reg) }); err != nil {
		fmt.Fprintln(stderr, "chatmcp-kbs: error:", err)
		return 1
	}
	defer stop()
	if !o.Dev && o.TLSCert == "" && o.TLSKey == "" {
		// In a TEE the KBS serves RA-TLS with the machine's own evidence.
		a, err := devices.Detect(&devices.Options{TEE: attest.TEE(*tee)})
		if err != nil {
			fmt.Fprintf(stderr, "chatmcp-kbs: error: no TLS: %v; run inside a TEE, pass --tls-cert and --tls-key, or --dev for a loopback development server\n", err)
			return 1
		}
		o.Attester = a
	}
	if err := Run(ctx, &o); err != nil {
		fmt.Fprintln(stderr, "chatmcp-kbs: error:", err)
		return 1
	}
	return 0
}
