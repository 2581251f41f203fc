package daemon

import (
	"context"
	"fmt"
	"io"

	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/internal/daemon"
	"github.com/chatmcp/chatmcp/internal/ops"
)

// Main parses the chatmcp-gateway command line (without the program name)
// into Options, with deps from the binary, runs the daemon until ctx is
// done and returns the process exit code.
//
//	chatmcp-gateway --config FILE [--dev] [--metrics-listen ADDR] [--log-format text|json]
func Main(ctx context.Context, args []string, stderr io.Writer, deps Deps) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "chatmcp-gateway: error:", err)
		return 1
	}
	fs, of := daemon.FlagSet("chatmcp-gateway", stderr)
	o := Options{Deps: deps, Stderr: stderr}
	configPath, code, done := daemon.ConfigArgs(fs, "chatmcp-gateway", "docs/gateway.md", args, stderr, &o.Dev)
	if done {
		return code
	}
	var err error
	if o.Config, err = gateway.LoadConfig(configPath); err != nil {
		return fail(err)
	}
	// The ops server comes first, so /readyz answers 503 while the
	// secrets are fetched and the upstreams connected.
	o.Readiness = ops.NewReadiness(gateway.ReadinessChecks()...)
	var stop func()
	if o.Logger, stop, err = daemon.StartOps("chatmcp-gateway", stderr, of, o.Readiness, func(reg *ops.Registry) { o.Metrics = ops.NewGateway(reg) }); err != nil {
		return fail(err)
	}
	defer stop()
	if err := Run(ctx, &o); err != nil {
		return fail(err)
	}
	return 0
}
