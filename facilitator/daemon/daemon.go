// Package daemon runs the chatmcp-facilitator process: it opens the
// settlement ledger (SQLite in its data directory, or PostgreSQL shared by
// replicas), loads its fee-payer key and serves the x402 facilitator API
// (package facilitator) over TLS, or plain HTTP on loopback with --dev.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/facilitator"
	"github.com/chatmcp/chatmcp/internal/daemon"
	"github.com/chatmcp/chatmcp/internal/keyfile"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/ratls"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/solrpc"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/chatmcp/chatmcp/x402pay"
)

// Options configure Run.
type Options struct {
	// Listen is the TCP address to serve on. Required.
	Listen string
	// Data is the data directory: the ledger (Data/facilitator.db) and
	// the bearer token (Data/facilitator.token). Required.
	Data string
	// DB is a postgres:// DSN for the ledger. If empty, SQLite in Data.
	DB string
	// RPC is the Solana JSON-RPC URL. Required.
	RPC string
	// Network is the CAIP-2 id of the cluster RPC reaches. Required.
	Network string
	// FeePayerKey is a solana-keygen keypair file (mode 0600) holding the
	// fee payer's key (development and tests). Exactly one of FeePayerKey
	// and FeePayerSigner is required.
	FeePayerKey string
	// FeePayerSigner is a chatmcp-signer (https://host:port) holding the
	// fee payer's key under a fee_payer_only policy; FeePayerToken is its
	// capability token and SignerPolicy the attestation policy its RA-TLS
	// evidence must satisfy (both required with it).
	FeePayerSigner, FeePayerToken, SignerPolicy string
	// Public serves /verify and /settle without a bearer token. If false,
	// clients need the token in Data/facilitator.token.
	Public bool
	// TLSCert and TLSKey are PEM files to serve TLS with. Required unless
	// Dev.
	TLSCert, TLSKey string
	// Dev serves plain HTTP, and only on a loopback address.
	Dev bool
	// Stderr receives warnings and the listening line. If nil, os.Stderr.
	Stderr io.Writer
	// Logger receives operational logs. If nil, text to Stderr.
	Logger *slog.Logger
	// HTTPMetrics records requests. If nil, nothing is recorded.
	HTTPMetrics *ops.HTTP
	// Readiness, if non-nil, gets the check "store".
	Readiness *ops.Readiness
	// Ready, if non-nil, is called with the bound address once serving.
	Ready func(addr net.Addr)
}

// TokenFile is the bearer token's file name in the data directory.
const TokenFile = "facilitator.token"

// Run serves the facilitator until ctx is done.
func Run(ctx context.Context, o *Options) error {
	stderr, logger := daemon.Output(o.Stderr, o.Logger)
	o.Readiness.Declare("store")
	switch {
	case o.Data == "":
		return errors.New("--data DIR is required")
	case o.RPC == "":
		return errors.New("--rpc URL is required")
	case o.Network == "":
		return errors.New("--network CAIP2 is required (e.g. " + x402.SolanaDevnet + ")")
	case (o.FeePayerKey == "") == (o.FeePayerSigner == ""):
		return errors.New("exactly one of --fee-payer-key FILE (a solana-keygen keypair file) and --fee-payer-signer URL is required")
	case o.FeePayerSigner != "" && (o.FeePayerToken == "" || o.SignerPolicy == ""):
		return errors.New("--fee-payer-signer needs --fee-payer-token-file and --signer-policy")
	case !o.Dev && (o.TLSCert == "" || o.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key are required (or --dev for plain HTTP on loopback)")
	}
	if err := os.MkdirAll(o.Data, 0o700); err != nil {
		return err
	}
	feePayer, err := loadFeePayer(ctx, o)
	if err != nil {
		return err
	}
	var token string
	if !o.Public {
		b, err := keyfile.LoadOrCreate(filepath.Join(o.Data, TokenFile), func() ([]byte, error) {
			var r [32]byte
			if _, err := rand.Read(r[:]); err != nil {
				return nil, err
			}
			return []byte(hex.EncodeToString(r[:]) + "\n"), nil
		})
		if err != nil {
			return fmt.Errorf("facilitator token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	ln, err := daemon.Listen("chatmcp-facilitator", o.Listen, o.Dev, stderr)
	if err != nil {
		return err
	}
	defer ln.Close()
	db, err := store.OpenIn(ctx, o.DB, o.Data, "facilitator.db")
	if err != nil {
		return err
	}
	defer db.Close()
	fac, err := facilitator.New(ctx, db, &facilitator.Options{
		Network: o.Network, RPC: &solrpc.Client{URL: o.RPC}, FeePayer: feePayer,
		Logger: logger, Token: token,
	})
	if err != nil {
		return err
	}
	o.Readiness.Set(ops.Check{Name: "store", Func: db.PingContext})
	var h http.Handler = fac.Handler()
	if o.HTTPMetrics != nil {
		h = o.HTTPMetrics.Handler(h)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "chatmcp-facilitator: listening on %s://%s (%s, network %s, fee payer %s)\n", daemon.Scheme(o.Dev), ln.Addr(), db.Dialect, o.Network, feePayer.PublicKey())
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}
	return daemon.Serve(ctx, hs, ln, o.Dev, o.TLSCert, o.TLSKey)
}

// loadFeePayer is the fee payer: a key from a keypair file, or a
// chatmcp-signer reached over RA-TLS under the signer policy.
func loadFeePayer(ctx context.Context, o *Options) (facilitator.FeePayer, error) {
	if o.FeePayerKey != "" {
		raw, err := keyfile.Load(o.FeePayerKey)
		if err != nil {
			return nil, fmt.Errorf("fee-payer key: %w", err)
		}
		kp, err := wallet.ParseKeypair(raw)
		if err != nil {
			return nil, fmt.Errorf("fee-payer key %s: %w", o.FeePayerKey, err)
		}
		return facilitator.WalletKey{Keypair: kp}, nil
	}
	pol, err := attest.LoadPolicy(o.SignerPolicy)
	if err != nil {
		return nil, fmt.Errorf("--signer-policy: %w", err)
	}
	v := ratls.NewVerifier(verifiers.New(nil), pol, nil)
	c := &signerclient.Client{BaseURL: o.FeePayerSigner, Token: o.FeePayerToken,
		HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: ratls.ClientConfig(v), ForceAttemptHTTP2: true}}}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := x402pay.NewRemote(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("--fee-payer-signer: %w", err)
	}
	return r, nil
}
