// Package daemon runs the chatmcp-relay process: it opens the store, starts
// the replica fan-out and serves a relay.Server over TLS (or plain HTTP with
// --dev, loopback only) until its context ends. The relay logic itself
// lives in package relay.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chatmcp/chatmcp/internal/daemon"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/x402"
)

// Options configure Run.
type Options struct {
	// Listen is the TCP address to serve on. Required.
	Listen string
	// Data is the data directory holding the SQLite database
	// (Data/relay.db). Required unless DB is set.
	Data string
	// DB is a postgres:// DSN. If empty, SQLite in Data.
	DB string
	// Domain is the Sign-In With Solana domain clients use. If empty, the
	// bound listen address.
	Domain string
	// TLSCert and TLSKey are PEM files to serve TLS with. Required unless
	// Dev.
	TLSCert, TLSKey string
	// Dev serves plain HTTP, and only on a loopback address.
	Dev bool
	// Facilitator, if set, is an x402 facilitator's URL: users may then
	// set a price for strangers' first messages and payment stamps are
	// settled through it. If empty, proof of work only.
	Facilitator string
	// FacilitatorToken is the facilitator's bearer token, if it needs one.
	FacilitatorToken string
	// PaymentAssets are the mints prices may name. Required with
	// Facilitator.
	PaymentAssets []string
	// MinPayment is the least a price may ask, in atomic units. If zero, 1.
	MinPayment uint64
	// Stderr receives the warning and the listening line. If nil,
	// os.Stderr.
	Stderr io.Writer
	// Logger receives operational logs. If nil, text to Stderr.
	Logger *slog.Logger
	// Metrics records requests. If nil, nothing is recorded.
	Metrics *ops.Relay
	// Readiness, if non-nil, gets the checks "store" and "fanout" (GET
	// /readyz of the ops server).
	Readiness *ops.Readiness
	// Ready, if non-nil, is called with the bound address once serving.
	Ready func(addr net.Addr)
}

// Run serves the relay until ctx is done, then shuts down.
func Run(ctx context.Context, o *Options) error {
	stderr, logger := daemon.Output(o.Stderr, o.Logger)
	o.Readiness.Declare(relay.ReadinessChecks()...)
	if o.DB == "" && o.Data == "" {
		return errors.New("--data DIR (or --db DSN) is required")
	}
	if !o.Dev && (o.TLSCert == "" || o.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key are required (or --dev for plain HTTP on loopback)")
	}
	ln, err := daemon.Listen("chatmcp-relay", o.Listen, o.Dev, stderr)
	if err != nil {
		return err
	}
	defer ln.Close()
	domain := o.Domain
	if domain == "" {
		domain = ln.Addr().String()
	}
	db, err := store.OpenIn(ctx, o.DB, o.Data, "relay.db")
	if err != nil {
		return err
	}
	defer db.Close()
	var payments *stamp.Payment
	if o.Facilitator != "" {
		if len(o.PaymentAssets) == 0 {
			return errors.New("--facilitator needs --payment-assets MINT[,MINT…]: the mints prices may name")
		}
		if payments, err = paymentsFrom(ctx, o.Facilitator, o.FacilitatorToken); err != nil {
			return err
		}
		payments.Assets, payments.MinAmount = o.PaymentAssets, max(o.MinPayment, 1)
		fmt.Fprintf(stderr, "chatmcp-relay: payment stamps on %s through %s (fee payer %s)\n", payments.Network, o.Facilitator, payments.FeePayer)
	}
	srv, err := relay.New(ctx, db, &relay.Options{Domain: domain, Logger: logger, Metrics: o.Metrics, Payments: payments})
	if err != nil {
		return err
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
	o.Readiness.Set(relay.StoreCheck(db), ops.Check{Name: "fanout", Func: func(context.Context) error {
		if fanoutStopped.Load() {
			return errors.New("replica fan-out stopped")
		}
		return nil
	}})
	hs := &http.Server{Handler: o.Metrics.HTTPMetrics().Handler(srv), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "chatmcp-relay: listening on %s://%s (%s, domain %s)\n", daemon.Scheme(o.Dev), ln.Addr(), db.Dialect, domain)
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}
	return daemon.Serve(ctx, hs, ln, o.Dev, o.TLSCert, o.TLSKey)
}

// paymentsFrom asks the facilitator at url which Solana network it settles
// on and with which fee payer (GET /supported).
func paymentsFrom(ctx context.Context, url, token string) (*stamp.Payment, error) {
	c := &x402.FacilitatorClient{URL: strings.TrimRight(url, "/"), Token: token}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sup, err := c.Supported(ctx)
	if err != nil {
		return nil, fmt.Errorf("--facilitator: %w", err)
	}
	for _, k := range sup.Kinds {
		n, err := x402.ParseNetwork(k.Network)
		if k.X402Version == x402.Version && k.Scheme == x402.SchemeExact && err == nil && n.IsSolana() && k.Extra != nil && k.Extra.FeePayer != "" {
			return &stamp.Payment{Facilitator: c, FeePayer: k.Extra.FeePayer, Network: k.Network}, nil
		}
	}
	return nil, fmt.Errorf("--facilitator %s supports no x402 v2 exact scheme on Solana", url)
}
