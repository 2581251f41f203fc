// Package daemon is the startup every chatmcp daemon shares: its flag set
// with the ops flags, its logger from --log-format, its ops server on
// --metrics-listen and its --dev loopback listener; it links no domain
// package, so the untrusted relay may use it too.
package daemon

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/chatmcp/chatmcp/internal/ops"
)

// FlagSet returns the named daemon's flag set, writing usage and parse
// errors to stderr and returning them instead of exiting, with
// --metrics-listen and --log-format already registered in the returned
// ops.Flags (its own set, so flags libraries register on the global one
// never appear on a daemon's command line).
func FlagSet(name string, stderr io.Writer) (*flag.FlagSet, *ops.Flags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	of := new(ops.Flags)
	of.Register(fs)
	return fs, of
}

// StartOps builds the logger of's --log-format names and, when
// --metrics-listen is set, starts the ops server there with a fresh
// registry (register, if non-nil, adds the daemon's metrics to it first)
// and ready deciding /readyz (nil: ready once serving), and prints
// "<name>: metrics on URL (/healthz, /readyz, /metrics)" to stderr. stop
// closes the ops server; it does nothing when none started.
func StartOps(name string, stderr io.Writer, of *ops.Flags, ready *ops.Readiness, register func(*ops.Registry)) (log *slog.Logger, stop func(), err error) {
	if log, err = of.Logger(stderr); err != nil {
		return nil, nil, err
	}
	if of.MetricsListen == "" {
		return log, func() {}, nil
	}
	reg := ops.NewRegistry()
	if register != nil {
		register(reg)
	}
	srv, err := ops.Start(&ops.Options{Listen: of.MetricsListen, Registry: reg, Ready: ready, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(stderr, "%s: metrics on %s (/healthz, /readyz, /metrics)\n", name, srv.URL())
	return log, func() { srv.Close() }, nil
}

// Listen listens on the TCP address addr. With dev (plain HTTP) it
// refuses any address that is not loopback and prints the named daemon's
// --dev warning to stderr.
func Listen(name, addr string, dev bool, stderr io.Writer) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if dev {
		if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			ln.Close()
			return nil, fmt.Errorf("--dev serves plain HTTP and only on a loopback address, not %s", ln.Addr())
		}
		fmt.Fprintf(stderr, "%s: WARNING: --dev: plain HTTP without TLS, loopback only. Not for production.\n", name)
	}
	return ln, nil
}
