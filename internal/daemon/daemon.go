// Package daemon is the startup every chatmcp daemon shares: its flag set
// with the ops flags, its logger from --log-format, its ops server on
// --metrics-listen, its --dev loopback listener and its HTTP serving until
// shutdown; it links no domain package, so the untrusted relay may use it
// too.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

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

// Scheme is the scheme a daemon serves: "http" with dev, else "https".
func Scheme(dev bool) string {
	if dev {
		return "http"
	}
	return "https"
}

// Serve serves hs on ln until ctx is done, then shuts it down, waiting up
// to 5 s for requests in flight: plain HTTP with dev, else TLS with the
// PEM files certFile and keyFile. A shutdown is not an error.
func Serve(ctx context.Context, hs *http.Server, ln net.Listener, dev bool, certFile, keyFile string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		hs.Shutdown(sctx)
	}()
	var err error
	if dev {
		err = hs.Serve(ln)
	} else {
		err = hs.ServeTLS(ln, certFile, keyFile)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Output returns the zero-value defaults of a daemon's Options.Stderr and
// Options.Logger: stderr, or os.Stderr when nil, and log, or a text logger
// on that stderr when nil.
func Output(stderr io.Writer, log *slog.Logger) (io.Writer, *slog.Logger) {
	if stderr == nil {
		stderr = os.Stderr
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	return stderr, log
}

// ConfigArgs parses the command line of a daemon configured by one file,
// "NAME --config FILE [--dev]" with the ops flags already on fs: it adds
// --config (doc says where the file format is documented) and --dev, which
// sets *dev. done is true when Main returns code at once: 0 after --help,
// 1 after a usage error, printed as "NAME: error: …".
func ConfigArgs(fs *flag.FlagSet, name, doc string, args []string, stderr io.Writer, dev *bool) (path string, code int, done bool) {
	configPath := fs.String("config", "", "configuration file (YAML, "+doc+")")
	fs.BoolVar(dev, "dev", false, "use the INSECURE simulated TEE")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", 0, true
		}
		fmt.Fprintln(stderr, name+": error:", err)
		return "", 1, true
	}
	if *configPath == "" || fs.NArg() != 0 {
		fmt.Fprintf(stderr, "%s: error: usage: %s --config FILE [--dev]\n", name, name)
		return "", 1, true
	}
	return *configPath, 0, false
}
