// Package daemon runs the chatmcp-kbs process: it prepares the data
// directory (store, admin token, sealing key, audit key and log), chooses
// plain HTTP (--dev, loopback only) or TLS, and serves a kbs.Server until
// its context ends. The broker logic itself lives in package kbs.
package daemon

import (
	"context"
	"crypto/rand"
	"crypto/tls"
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
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/internal/keyfile"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/kbs"
	"github.com/chatmcp/chatmcp/ratls"
	"github.com/chatmcp/chatmcp/store"
)

// Files in the data directory.
const (
	FileDB         = "kbs.db"
	FileAdminToken = "admin.token"
	FileSealingKey = "sealing.key"
	FileAuditKey   = "audit.key"
	FileAuditPub   = "audit.pub"
	FileAuditLog   = "audit.jsonl"
)

// ReadinessChecks are the names of the checks Run sets in
// Options.Readiness, for declaring them before Run: the store open, the
// sealing key matching the store, the audit log open.
func ReadinessChecks() []string { return []string{"store", "sealer", "audit"} }

// Options configure Run.
type Options struct {
	// Listen is the TCP address to serve on. Required.
	Listen string
	// Data is the data directory, created with mode 0700. Required.
	Data string
	// DB is a postgres:// DSN. If empty, SQLite in Data/kbs.db.
	DB string
	// Dev accepts simulated evidence and serves plain HTTP, and only on a
	// loopback address.
	Dev bool
	// TLSCert and TLSKey are PEM files to serve TLS with when not Dev. If
	// empty, RA-TLS with Attester.
	TLSCert, TLSKey string
	// Attester, if non-nil, gives the RA-TLS certificate's evidence (the
	// KBS running in a TEE). If nil and no TLS files are given, Run fails
	// unless Dev.
	Attester attest.Attester
	// Stderr receives the banner and the listening line. If nil, os.Stderr.
	Stderr io.Writer
	// Ready, if non-nil, is called with the bound address once serving.
	Ready func(addr net.Addr)
	// Logger receives operational logs. If nil, text to Stderr.
	Logger *slog.Logger
	// Metrics records requests, release decisions and audit latency. If
	// nil, nothing is recorded.
	Metrics *ops.KBS
	// Readiness, if non-nil, gets the checks "store", "sealer" and
	// "audit", failing until each is ready (GET /readyz of the ops server).
	Readiness *ops.Readiness
}

// Run serves the KBS until ctx is done, then shuts down cleanly (closing the
// audit log with a final checkpoint).
func Run(ctx context.Context, o *Options) error {
	stderr := o.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	if o.Listen == "" || o.Data == "" {
		return errors.New("--listen and --data are required")
	}
	o.Readiness.Declare(ReadinessChecks()...)
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	var tlsConf *tls.Config
	switch {
	case o.Dev:
	case o.TLSCert != "" || o.TLSKey != "":
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return fmt.Errorf("loading --tls-cert/--tls-key: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	case o.Attester != nil:
		tlsConf = ratls.NewIssuer(o.Attester, nil).ServerConfig()
	default:
		return errors.New("no TLS: this machine has no TEE attester for an RA-TLS certificate; pass --tls-cert and --tls-key, or --dev for a loopback development server")
	}
	if err := os.MkdirAll(o.Data, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	if err := os.Chmod(o.Data, 0o700); err != nil {
		return err
	}
	token, err := loadOrCreateToken(filepath.Join(o.Data, FileAdminToken))
	if err != nil {
		return err
	}
	sealer, err := kbs.LoadOrCreateFileSealer(filepath.Join(o.Data, FileSealingKey))
	if err != nil {
		return err
	}
	akey, err := audit.LoadOrCreateKey(filepath.Join(o.Data, FileAuditKey))
	if err != nil {
		return err
	}
	if err := audit.WritePublicKey(filepath.Join(o.Data, FileAuditPub), akey); err != nil {
		return err
	}
	db, err := store.OpenIn(ctx, o.DB, o.Data, FileDB)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := kbs.OpenStorage(ctx, db)
	if err != nil {
		return err
	}
	o.Readiness.Set(ops.Check{Name: "store", Func: func(ctx context.Context) error { return db.PingContext(ctx) }})
	if err := st.CheckSealer(ctx, sealer); err != nil {
		return err
	}
	o.Readiness.Done("sealer")
	aopts := &audit.Options{Signer: akey}
	if o.Metrics != nil {
		aopts.Observer = o.Metrics.AuditMetrics()
	}
	alog, err := audit.Open(ctx, filepath.Join(o.Data, FileAuditLog), aopts)
	if err != nil {
		return err
	}
	defer alog.Close()
	o.Readiness.Done("audit")
	srv, err := kbs.NewServer(&kbs.Options{
		Storage: st, Sealer: sealer, Checker: verifiers.New(nil), Audit: metered(alog, o.Metrics),
		AdminToken: token, Dev: o.Dev,
		Logger: logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	if o.Dev {
		if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			ln.Close()
			return fmt.Errorf("--dev serves plain HTTP and accepts simulated evidence, so it listens on loopback only, not %s", o.Listen)
		}
		fmt.Fprint(stderr, devBanner)
	}
	scheme := "https"
	if tlsConf == nil {
		scheme = "http"
	} else {
		ln = tls.NewListener(ln, tlsConf)
	}
	hs := &http.Server{Handler: o.Metrics.HTTPMetrics().Handler(srv), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	fmt.Fprintf(stderr, "chatmcp-kbs: listening on %s://%s (data %s, store %s)\n", scheme, ln.Addr(), o.Data, db.Dialect)
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	return alog.Close()
}

const devBanner = `
**********************************************************************
*  chatmcp-kbs --dev: INSECURE DEVELOPMENT MODE                      *
*  - plain HTTP (no TLS), loopback only                              *
*  - SIMULATED attestation evidence is accepted where a policy       *
*    allows "sim": anyone can forge it, so secrets released here     *
*    are protected by nothing. Never put real secrets in a dev KBS.  *
**********************************************************************
`

// loadOrCreateToken reads the admin token at path or creates it
// (keyfile.LoadOrCreate) with 32 random bytes in hex.
func loadOrCreateToken(path string) (string, error) {
	b, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		return []byte(hex.EncodeToString(raw) + "\n"), nil
	})
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := strings.TrimRight(string(b), "\r\n")
	if len(tok) < 32 {
		return "", fmt.Errorf("admin token in %s is too short", path)
	}
	return tok, nil
}
