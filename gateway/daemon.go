package gateway

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/internal/ops"
)

// Deps are what the chatmcp-gateway binary wires in: the hardware
// attester and the KBS client.
type Deps struct {
	// Attester is the TEE attester for production mode. If nil, Detect
	// finds one.
	Attester attest.Attester
	// Detect finds the machine's TEE attester (attest/devices.Detect in
	// chatmcp-gateway). If nil too, the gateway refuses to start without
	// --dev.
	Detect func() (attest.Attester, error)
	// NewSecretSource returns the KBS client for url, running the
	// attestation handshake with a. If nil, a config that needs secrets
	// cannot start.
	NewSecretSource func(url string, a attest.Attester) (SecretSource, error)
	// Getenv reads the environment. If nil, os.Getenv.
	Getenv func(string) string
	// Ready, if non-nil, is called with the bound address once the
	// gateway listens (tests and supervisors; the log line says the same).
	Ready func(addr net.Addr)
}

// DevBanner is printed to stderr in --dev mode.
const DevBanner = `
################################################################################
#  chatmcp-gateway --dev: SIMULATED TEE. INSECURE. FOR DEVELOPMENT ONLY.       #
#  The attestation evidence is forgeable by anyone (attest/sim); clients must   #
#  opt in to "sim" in their policy. Never put real credentials behind this.     #
################################################################################
`

// Run is the chatmcp-gateway command: chatmcp-gateway --config FILE [--dev].
func Run(ctx context.Context, args []string, stderr io.Writer, deps Deps) error {
	fs := flag.NewFlagSet("chatmcp-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML, docs/gateway.md)")
	dev := fs.Bool("dev", false, "use the INSECURE simulated TEE")
	var of ops.Flags
	of.Register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *configPath == "" || fs.NArg() != 0 {
		return errors.New("usage: chatmcp-gateway --config FILE [--dev]")
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	log, err := of.Logger(stderr)
	if err != nil {
		return err
	}
	// The ops server comes first, so /readyz answers 503 while the
	// secrets are fetched and the upstreams connected.
	var metrics *ops.Gateway
	ready := ops.NewReadiness(ReadinessChecks()...)
	if of.MetricsListen != "" {
		reg := ops.NewRegistry()
		metrics = ops.NewGateway(reg)
		osrv, err := ops.Start(&ops.Options{Listen: of.MetricsListen, Registry: reg, Ready: ready, Logger: log})
		if err != nil {
			return err
		}
		defer osrv.Close()
		fmt.Fprintf(stderr, "chatmcp-gateway: metrics on %s (/healthz, /readyz, /metrics)\n", osrv.URL())
	}
	getenv := deps.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if getenv("GOGC") == "" {
		// Each call allocates in two MCP codecs (server and client side);
		// a live heap of a few MiB makes the default GOGC=100 collect
		// constantly. 400 trades some MiB of RAM for about a fifth less
		// latency (docs/BENCHMARKS.md). GOGC in the environment wins.
		debug.SetGCPercent(400)
	}
	a := deps.Attester
	if *dev {
		fmt.Fprint(stderr, DevBanner)
		if a, err = sim.NewAttester(nil); err != nil {
			return err
		}
	}
	if a == nil && deps.Detect != nil {
		if a, err = deps.Detect(); err != nil {
			return fmt.Errorf("no TEE attester available (%w); run inside a TEE or pass --dev for the INSECURE simulator", err)
		}
	}
	if a == nil {
		return errors.New("no TEE attester available; run inside a TEE or pass --dev for the INSECURE simulator")
	}
	opts := &Options{Attester: a, Logger: log, Dev: *dev, Getenv: getenv, Metrics: metrics}
	if len(cfg.SecretNames()) > 0 {
		if deps.NewSecretSource == nil {
			return errors.New("the config refers to secrets but this build has no KBS client")
		}
		if opts.Secrets, err = deps.NewSecretSource(cfg.KBS, a); err != nil {
			return fmt.Errorf("kbs client: %w", err)
		}
	}
	s, err := New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	ready.Set(s.ReadyChecks()...)
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	log.Info("chatmcp-gateway serving", "addr", l.Addr().String(), "audience", s.Audience(), "tools", len(s.ToolNames()), "dev", *dev)
	if deps.Ready != nil {
		deps.Ready(l.Addr())
	}
	return s.Serve(ctx, l)
}
