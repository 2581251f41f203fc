package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/chatmcp/chatmcp/gateway"
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
	fs := flag.NewFlagSet("chatmcp-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := Options{Deps: deps, Stderr: stderr}
	configPath := fs.String("config", "", "configuration file (YAML, docs/gateway.md)")
	fs.BoolVar(&o.Dev, "dev", false, "use the INSECURE simulated TEE")
	var of ops.Flags
	of.Register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return fail(err)
	}
	if *configPath == "" || fs.NArg() != 0 {
		return fail(errors.New("usage: chatmcp-gateway --config FILE [--dev]"))
	}
	var err error
	if o.Config, err = gateway.LoadConfig(*configPath); err != nil {
		return fail(err)
	}
	if o.Logger, err = of.Logger(stderr); err != nil {
		return fail(err)
	}
	// The ops server comes first, so /readyz answers 503 while the
	// secrets are fetched and the upstreams connected.
	o.Readiness = ops.NewReadiness(gateway.ReadinessChecks()...)
	if of.MetricsListen != "" {
		reg := ops.NewRegistry()
		o.Metrics = ops.NewGateway(reg)
		osrv, err := ops.Start(&ops.Options{Listen: of.MetricsListen, Registry: reg, Ready: o.Readiness, Logger: o.Logger})
		if err != nil {
			return fail(err)
		}
		defer osrv.Close()
		fmt.Fprintf(stderr, "chatmcp-gateway: metrics on %s (/healthz, /readyz, /metrics)\n", osrv.URL())
	}
	if err := Run(ctx, &o); err != nil {
		return fail(err)
	}
	return 0
}
