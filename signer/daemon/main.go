package daemon

import (
	"context"
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
	configPath, code, done := daemon.ConfigArgs(fs, "chatmcp-signer", "docs/payments.md", args, stderr, &o.Dev)
	if done {
		return code
	}
	var err error
	if o.Config, err = signer.LoadConfig(configPath); err != nil {
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
