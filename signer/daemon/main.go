package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/chatmcp/chatmcp/internal/daemon"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/signer"
)

// Main parses the chatmcp-signer command line (without the program name)
// into Options, with deps from the binary, runs the daemon until ctx is
// done and returns the process exit code.
//
//	chatmcp-signer --config FILE [--dev] [--metrics-listen ADDR] [--log-format text|json]
func Main(ctx context.Context, args []string, stderr io.Writer, deps Deps) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "chatmcp-signer: error:", err)
		return 1
	}
	fs, of := daemon.FlagSet("chatmcp-signer", stderr)
	o := Options{Deps: deps, Stderr: stderr}
	configPath := fs.String("config", "", "configuration file (YAML, docs/payments.md)")
	fs.BoolVar(&o.Dev, "dev", false, "use the INSECURE simulated TEE")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return fail(err)
	}
	if *configPath == "" || fs.NArg() != 0 {
		return fail(errors.New("usage: chatmcp-signer --config FILE [--dev]"))
	}
	var err error
	if o.Config, err = signer.LoadConfig(*configPath); err != nil {
		return fail(err)
	}
	o.Readiness = ops.NewReadiness(ReadinessChecks()...)
	var stop func()
	if o.Logger, stop, err = daemon.StartOps("chatmcp-signer", stderr, of, o.Readiness, func(reg *ops.Registry) { o.Metrics = ops.NewSigner(reg, signer.Reasons()) }); err != nil {
		return fail(err)
	}
	defer stop()
	if err := Run(ctx, &o); err != nil {
		return fail(err)
	}
	return 0
}
