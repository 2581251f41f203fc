// Package daemon runs the chatmcp-gateway process: it chooses the TEE
// attester (or the simulator with --dev), fetches layer-1 secrets through
// the KBS client the binary wires in, and serves a gateway.Server until its
// context ends. The gateway logic itself lives in package gateway.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/internal/daemon"
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
	NewSecretSource func(url string, a attest.Attester) (gateway.SecretSource, error)
	// Getenv reads the environment. If nil, os.Getenv.
	Getenv func(string) string
	// Ready, if non-nil, is called with the bound address once the
	// gateway listens (tests and supervisors; the log line says the same).
	Ready func(addr net.Addr)
}

// Options configure Run: the binary's Deps and what the command line
// gives.
type Options struct {
	Deps
	// Config is the parsed configuration file. Required.
	Config *gateway.Config
	// Dev uses the INSECURE simulated TEE (attest/sim) instead of
	// Attester or Detect.
	Dev bool
	// Stderr receives the --dev banner. If nil, os.Stderr.
	Stderr io.Writer
	// Logger receives operational logs. If nil, text to Stderr.
	Logger *slog.Logger
	// Metrics records tool calls, approvals and requests. If nil, nothing
	// is recorded.
	Metrics *ops.Gateway
	// Readiness, if non-nil, gets the gateway's checks
	// (gateway.ReadinessChecks) once the server is built.
	Readiness *ops.Readiness
}

// DevBanner is printed to stderr in --dev mode.
const DevBanner = `
################################################################################
#  chatmcp-gateway --dev: SIMULATED TEE. INSECURE. FOR DEVELOPMENT ONLY.       #
#  The attestation evidence is forgeable by anyone (attest/sim); clients must   #
#  opt in to "sim" in their policy. Never put real credentials behind this.     #
################################################################################
`

// Run serves the gateway until ctx is done.
func Run(ctx context.Context, o *Options) error {
	if o.Config == nil {
		return errors.New("usage: chatmcp-gateway --config FILE [--dev]")
	}
	stderr, log := daemon.Output(o.Stderr, o.Logger)
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	o.Readiness.Declare(gateway.ReadinessChecks()...)
	cfg := o.Config
	a := o.Attester
	var err error
	if o.Dev {
		fmt.Fprint(stderr, DevBanner)
		if a, err = sim.NewAttester(nil); err != nil {
			return err
		}
	}
	if a == nil && o.Detect != nil {
		if a, err = o.Detect(); err != nil {
			return fmt.Errorf("no TEE attester available (%w); run inside a TEE or pass --dev for the INSECURE simulator", err)
		}
	}
	if a == nil {
		return errors.New("no TEE attester available; run inside a TEE or pass --dev for the INSECURE simulator")
	}
	opts := &gateway.Options{Attester: a, Logger: log, Dev: o.Dev, Getenv: getenv, Metrics: o.Metrics}
	if len(cfg.SecretNames()) > 0 {
		if o.NewSecretSource == nil {
			return errors.New("the config refers to secrets but this build has no KBS client")
		}
		if opts.Secrets, err = o.NewSecretSource(cfg.KBS, a); err != nil {
			return fmt.Errorf("kbs client: %w", err)
		}
	}
	s, err := gateway.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	o.Readiness.Set(s.ReadyChecks()...)
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	log.Info("chatmcp-gateway serving", "addr", l.Addr().String(), "audience", s.Audience(), "tools", len(s.ToolNames()), "dev", o.Dev)
	if o.Ready != nil {
		o.Ready(l.Addr())
	}
	return s.Serve(ctx, l)
}
