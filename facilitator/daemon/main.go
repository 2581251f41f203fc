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
)

// Main parses the chatmcp-facilitator command line (without the program
// name) into Options, runs the daemon until ctx is done and returns the
// process exit code.
//
//	chatmcp-facilitator --data DIR --rpc URL --network CAIP2
//	                    (--fee-payer-key FILE | --fee-payer-signer URL --fee-payer-token-file FILE --signer-policy FILE)
//	                    [--listen ADDR] [--db DSN] [--public]
//	                    (--tls-cert FILE --tls-key FILE | --dev)
//	                    [--metrics-listen ADDR] [--log-format text|json]
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs, of := daemon.FlagSet("chatmcp-facilitator", stderr)
	var o Options
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8447", "address to listen on")
	fs.StringVar(&o.Data, "data", "", "data directory (ledger DIR/facilitator.db, token DIR/facilitator.token)")
	fs.StringVar(&o.DB, "db", "", "PostgreSQL DSN (postgres://…) for the ledger instead of SQLite in --data")
	fs.StringVar(&o.RPC, "rpc", "", "Solana JSON-RPC URL")
	fs.StringVar(&o.Network, "network", "", "CAIP-2 id of the cluster --rpc reaches (e.g. solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1, devnet)")
	fs.StringVar(&o.FeePayerKey, "fee-payer-key", "", "solana-keygen keypair file of the fee payer (mode 0600; development)")
	fs.StringVar(&o.FeePayerSigner, "fee-payer-signer", "", "chatmcp-signer (https://host:port) holding the fee payer's key, fee_payer_only")
	tokenFile := fs.String("fee-payer-token-file", "", "file holding the fee-payer signer's capability token")
	fs.StringVar(&o.SignerPolicy, "signer-policy", "", "attestation policy the fee-payer signer's RA-TLS evidence must satisfy")
	fs.BoolVar(&o.Public, "public", false, "serve /verify and /settle without the bearer token (the fee payer pays for anyone's settlements)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "TLS certificate (PEM)")
	fs.StringVar(&o.TLSKey, "tls-key", "", "TLS private key (PEM)")
	fs.BoolVar(&o.Dev, "dev", false, "INSECURE: plain HTTP, loopback addresses only")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "chatmcp-facilitator: error:", err)
		return 1
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	o.Stderr = stderr
	var err error
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fail(err)
		}
		o.FeePayerToken = strings.TrimSpace(string(b))
	}
	o.Readiness = ops.NewReadiness("store")
	var stop func()
	if o.Logger, stop, err = daemon.StartOps("chatmcp-facilitator", stderr, of, o.Readiness, func(reg *ops.Registry) { o.HTTPMetrics = ops.NewHTTP(reg) }); err != nil {
		return fail(err)
	}
	defer stop()
	if err := Run(ctx, &o); err != nil {
		return fail(err)
	}
	return 0
}
