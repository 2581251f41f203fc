package relay

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/store"
)

// ReadinessChecks are the names of the relay's readiness checks, for
// declaring them before it starts: the store answering (StoreCheck) and,
// with PostgreSQL, the replica fan-out listening ("fanout", after Run
// signals ready).
func ReadinessChecks() []string { return []string{"store", "fanout"} }

// StoreCheck is the "store" readiness check: db answers a ping.
func StoreCheck(db *store.DB) ops.Check {
	return ops.Check{Name: "store", Func: func(ctx context.Context) error { return db.PingContext(ctx) }}
}

// Main runs the chatmcp-relay daemon with command-line args (without the
// program name) until ctx is done, and returns the process exit code.
//
//	chatmcp-relay --listen ADDR --data DIR [--db DSN] [--domain HOST[:PORT]]
//	              (--tls-cert FILE --tls-key FILE | --dev)
//	              [--metrics-listen ADDR] [--log-format text|json]
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("chatmcp-relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8444", "address to listen on")
	data := fs.String("data", "", "data directory (SQLite database DIR/relay.db)")
	dsn := fs.String("db", "", "PostgreSQL DSN (postgres://…) instead of SQLite in --data")
	domain := fs.String("domain", "", "Sign-In With Solana domain clients use (default: the listen address)")
	certFile := fs.String("tls-cert", "", "TLS certificate (PEM)")
	keyFile := fs.String("tls-key", "", "TLS private key (PEM)")
	dev := fs.Bool("dev", false, "INSECURE: plain HTTP, loopback addresses only")
	var of ops.Flags
	of.Register(fs)
	if err := fs.Parse(args); err != nil {
		return 1
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "chatmcp-relay: error: "+format+"\n", a...)
		return 1
	}
	logger, err := of.Logger(stderr)
	if err != nil {
		return fail("%v", err)
	}
	var metrics *ops.Relay
	ready := ops.NewReadiness(ReadinessChecks()...)
	if of.MetricsListen != "" {
		reg := ops.NewRegistry()
		metrics = ops.NewRelay(reg)
		osrv, err := ops.Start(&ops.Options{Listen: of.MetricsListen, Registry: reg, Ready: ready, Logger: logger})
		if err != nil {
			return fail("%v", err)
		}
		defer osrv.Close()
		fmt.Fprintf(stderr, "chatmcp-relay: metrics on %s (/healthz, /readyz, /metrics)\n", osrv.URL())
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if *dsn == "" && *data == "" {
		return fail("--data DIR (or --db DSN) is required")
	}
	if !*dev && (*certFile == "" || *keyFile == "") {
		return fail("--tls-cert and --tls-key are required (or --dev for plain HTTP on loopback)")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail("%v", err)
	}
	defer ln.Close()
	if *dev {
		if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
			return fail("--dev serves plain HTTP and only on a loopback address, not %s", ln.Addr())
		}
		fmt.Fprintln(stderr, "chatmcp-relay: WARNING: --dev: plain HTTP without TLS, loopback only. Not for production.")
	}
	if *domain == "" {
		*domain = ln.Addr().String()
	}
	src := *dsn
	if src == "" {
		src = filepath.Join(*data, "relay.db")
	}
	db, err := store.Open(ctx, src)
	if err != nil {
		return fail("%v", err)
	}
	defer db.Close()
	srv, err := New(ctx, db, &Options{Domain: *domain, Logger: logger, Metrics: metrics})
	if err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fanout := make(chan struct{})
	var fanoutStopped atomic.Bool
	go func() {
		if err := srv.Run(ctx, fanout); err != nil {
			fanoutStopped.Store(true)
			logger.Error("relay: replica fan-out stopped", "err", err)
		}
	}()
	<-fanout
	ready.Set(StoreCheck(db), ops.Check{Name: "fanout", Func: func(context.Context) error {
		if fanoutStopped.Load() {
			return errors.New("replica fan-out stopped")
		}
		return nil
	}})
	hs := &http.Server{Handler: metrics.HTTPMetrics().Handler(srv), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		hs.Shutdown(sctx)
	}()
	scheme := "https"
	if *dev {
		scheme = "http"
	}
	fmt.Fprintf(stderr, "chatmcp-relay: listening on %s://%s (%s, domain %s)\n", scheme, ln.Addr(), db.Dialect, *domain)
	if *dev {
		err = hs.Serve(ln)
	} else {
		err = hs.ServeTLS(ln, *certFile, *keyFile)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fail("%v", err)
	}
	return 0
}
