package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/chatmcp/chatmcp/internal/daemon"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/relay"
)

// Main parses the chatmcp-relay command line (without the program name)
// into Options, runs the daemon until ctx is done and returns the process
// exit code.
//
//	chatmcp-relay --listen ADDR --data DIR [--db DSN] [--domain HOST[:PORT]]
//	              (--tls-cert FILE --tls-key FILE | --dev)
//	              [--facilitator URL --payment-assets MINT[,MINT…] [--min-payment N] [--facilitator-token-file FILE]]
//	              [--metrics-listen ADDR] [--log-format text|json]
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs, of := daemon.FlagSet("chatmcp-relay", stderr)
	var o Options
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8444", "address to listen on")
	fs.StringVar(&o.Data, "data", "", "data directory (SQLite database DIR/relay.db)")
	fs.StringVar(&o.DB, "db", "", "PostgreSQL DSN (postgres://…) instead of SQLite in --data")
	fs.StringVar(&o.Domain, "domain", "", "Sign-In With Solana domain clients use (default: the listen address)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate (PEM)")
	fs.StringVar(&o.TLSKey, "tls-key", "", "TLS private key (PEM)")
	fs.BoolVar(&o.Dev, "dev", false, "INSECURE: plain HTTP, loopback addresses only")
	fs.StringVar(&o.Facilitator, "facilitator", "", "x402 facilitator URL: users may set a price for strangers' first messages (default: proof of work only)")
	tokenFile := fs.String("facilitator-token-file", "", "file holding the facilitator's bearer token")
	assets := fs.String("payment-assets", "", "comma-separated SPL mints prices may name (required with --facilitator)")
	fs.Uint64Var(&o.MinPayment, "min-payment", 1, "the least a price may ask, in atomic units (keep it above a settlement's fee)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "chatmcp-relay: error:", err)
		return 1
	}
	o.Stderr = stderr
	var err error
	for _, a := range strings.Split(*assets, ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.PaymentAssets = append(o.PaymentAssets, a)
		}
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fail(err)
		}
		o.FacilitatorToken = strings.TrimSpace(string(b))
	}
	o.Readiness = ops.NewReadiness(relay.ReadinessChecks()...)
	var stop func()
	if o.Logger, stop, err = daemon.StartOps("chatmcp-relay", stderr, of, o.Readiness, func(reg *ops.Registry) { o.Metrics = ops.NewRelay(reg) }); err != nil {
		return fail(err)
	}
	defer stop()
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if err := Run(ctx, &o); err != nil {
		return fail(err)
	}
	return 0
}
