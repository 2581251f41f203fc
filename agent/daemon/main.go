package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/chatmcp/chatmcp/internal/ops"
)

// Main parses the chatmcp-agent command line (without the program name)
// into Options, runs the agent until ctx is done and returns the process
// exit code.
//
//	chatmcp-agent --config FILE [--dev] [--metrics-listen ADDR] [--log-format text|json]
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("chatmcp-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.Config, "config", "", "configuration `FILE` (YAML, see docs/agent.md)")
	fs.BoolVar(&o.Dev, "dev", false, "INSECURE: simulated TEE evidence; accept policies that allow it")
	var of ops.Flags
	of.Register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "chatmcp-agent: error:", err)
		return 1
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	o.Stderr = stderr
	var err error
	if o.Logger, err = of.Logger(stderr); err != nil {
		return fail(err)
	}
	o.Readiness = ops.NewReadiness("relay")
	if of.MetricsListen != "" {
		osrv, err := ops.Start(&ops.Options{Listen: of.MetricsListen, Registry: ops.NewRegistry(), Ready: o.Readiness, Logger: o.Logger})
		if err != nil {
			return fail(err)
		}
		defer osrv.Close()
		fmt.Fprintf(stderr, "chatmcp-agent: metrics on %s (/healthz, /readyz, /metrics)\n", osrv.URL())
	}
	if err := Run(ctx, &o); err != nil {
		return fail(err)
	}
	return 0
}
