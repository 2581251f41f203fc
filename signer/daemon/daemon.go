// Package daemon runs the chatmcp-signer process: it chooses the TEE
// attester (or the simulator with --dev), fetches the Solana key from the
// KBS with the attestation handshake, opens the budget ledger and the audit
// log, and serves the signer's API over RA-TLS until its context ends. The
// signing logic itself lives in package signer.
package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/internal/daemon"
	"github.com/chatmcp/chatmcp/internal/keyfile"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/ratls"
	"github.com/chatmcp/chatmcp/signer"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/wallet"
)

// Files in the data directory.
const (
	FileDB         = "signer.db"
	FileAdminToken = "admin.token"
	FileTokenKey   = "token.key"
	FileAuditKey   = "audit.key"
	FileAuditPub   = "audit.pub"
	FileAuditLog   = "audit.jsonl"
	FilePins       = "tls-pins.json"
)

// ReadinessChecks are the names of the checks Run sets: the key fetched,
// the ledger open, the audit log open.
func ReadinessChecks() []string { return []string{"key", "ledger", "audit"} }

// SecretSource fetches a KBS secret through the attestation handshake
// (kbsclient.Client in chatmcp-signer).
type SecretSource interface {
	Fetch(ctx context.Context, name string) ([]byte, error)
}

// Deps are what the chatmcp-signer binary wires in.
type Deps struct {
	// Attester is the TEE attester. If nil, Detect finds one.
	Attester attest.Attester
	// Detect finds the machine's TEE attester. If nil too, the signer
	// refuses to start without --dev.
	Detect func() (attest.Attester, error)
	// NewSecretSource returns the KBS client for url, attesting with a.
	// Required.
	NewSecretSource func(url string, a attest.Attester) (SecretSource, error)
	// Ready, if non-nil, is called with the bound address once serving.
	Ready func(addr net.Addr)
}

// Options configure Run.
type Options struct {
	Deps
	// Config is the parsed configuration. Required.
	Config *signer.Config
	// Dev uses the INSECURE simulated TEE (attest/sim).
	Dev bool
	// Stderr receives the --dev banner and the listening line. If nil,
	// os.Stderr.
	Stderr io.Writer
	// Logger receives operational logs. If nil, text to Stderr.
	Logger *slog.Logger
	// Metrics records requests, decisions and audit latency. If nil,
	// nothing is recorded.
	Metrics *ops.Signer
	// Readiness, if non-nil, gets the checks of ReadinessChecks.
	Readiness *ops.Readiness
	// OnHold, if non-nil, is called when a request waits for a person.
	OnHold func(signerapi.Approval)
}

// DevBanner is printed to stderr in --dev mode.
const DevBanner = `
################################################################################
#  chatmcp-signer --dev: SIMULATED TEE. INSECURE. FOR DEVELOPMENT ONLY.        #
#  The attestation evidence is forgeable by anyone (attest/sim), and so is    #
#  the KBS release of the signing key. Never give this signer a funded key.    #
################################################################################
`

// Run serves the signer until ctx is done.
func Run(ctx context.Context, o *Options) error {
	if o.Config == nil {
		return errors.New("usage: chatmcp-signer --config FILE [--dev]")
	}
	cfg := o.Config
	stderr, log := daemon.Output(o.Stderr, o.Logger)
	o.Readiness.Declare(ReadinessChecks()...)
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
	if o.NewSecretSource == nil {
		return errors.New("this build has no KBS client")
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	admin, err := keyfile.LoadOrCreate(filepath.Join(cfg.Data, FileAdminToken), func() ([]byte, error) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		return []byte(hex.EncodeToString(raw) + "\n"), nil
	})
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	tokKey, err := captoken.LoadOrCreateKey(filepath.Join(cfg.Data, FileTokenKey))
	if err != nil {
		return fmt.Errorf("token key: %w", err)
	}
	src, err := o.NewSecretSource(cfg.KBS, a)
	if err != nil {
		return fmt.Errorf("kbs client: %w", err)
	}
	raw, err := src.Fetch(ctx, cfg.Key.Secret)
	if err != nil {
		return fmt.Errorf("fetching key %q from the KBS: %w", cfg.Key.Secret, err)
	}
	kp, err := wallet.ParseKeypair(raw)
	clear(raw)
	if err != nil {
		return fmt.Errorf("key %q: %w", cfg.Key.Secret, err)
	}
	o.Readiness.Done("key")
	akey, err := audit.LoadOrCreateKey(filepath.Join(cfg.Data, FileAuditKey))
	if err != nil {
		return err
	}
	if err := audit.WritePublicKey(filepath.Join(cfg.Data, FileAuditPub), akey); err != nil {
		return err
	}
	db, err := store.OpenIn(ctx, cfg.DB, cfg.Data, FileDB)
	if err != nil {
		return err
	}
	defer db.Close()
	ledger, err := signer.OpenLedger(ctx, db, nil)
	if err != nil {
		return err
	}
	o.Readiness.Set(ops.Check{Name: "ledger", Func: func(ctx context.Context) error { return db.PingContext(ctx) }})
	aopts := &audit.Options{Signer: akey}
	if o.Metrics != nil {
		aopts.Observer = o.Metrics.AuditMetrics()
	}
	alog, err := audit.Open(ctx, filepath.Join(cfg.Data, FileAuditLog), aopts)
	if err != nil {
		return err
	}
	defer alog.Close()
	o.Readiness.Done("audit")
	sopts := &signer.Options{Key: kp, Policy: &cfg.Policy, Ledger: ledger, Audit: alog,
		ApprovalTimeout: time.Duration(cfg.ApprovalTimeout), Logger: log}
	if o.OnHold != nil {
		sopts.OnHold = o.OnHold
	}
	if o.Metrics != nil {
		sopts.Metrics = o.Metrics
	}
	sg, err := signer.New(sopts)
	if err != nil {
		return err
	}
	issuer := ratls.NewIssuer(a, nil)
	pins := &pinWriter{path: filepath.Join(cfg.Data, FilePins)}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := issuer.Certificate(hello.Context())
		if err != nil {
			return nil, err
		}
		return c, pins.write(c)
	}}
	if c, err := issuer.Certificate(ctx); err != nil {
		return fmt.Errorf("issuing the RA-TLS certificate: %w", err)
	} else if err := pins.write(c); err != nil {
		return err
	}
	audience := "chatmcp-signer:" + sg.PublicKey().String()
	h := signer.Handler(&signer.ServerOptions{
		Signer: sg, TokenKey: tokKey, Audience: audience, AdminToken: strings.TrimSpace(string(admin)),
		Attestation: ratls.AttestationHandler(a, issuer.SPKI), Dev: o.Dev, Logger: log,
	})
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	if o.Dev {
		if ta, ok := l.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			l.Close()
			return fmt.Errorf("--dev uses the simulated TEE, so it listens on loopback only, not %s", cfg.Listen)
		}
	}
	hs := &http.Server{Handler: o.Metrics.HTTPMetrics().Handler(h), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		// A held request waits for a person up to the approval timeout.
		WriteTimeout: time.Duration(cfg.ApprovalTimeout) + 30*time.Second}
	fmt.Fprintf(stderr, "chatmcp-signer: listening on https://%s (key %s, data %s, store %s%s)\n", l.Addr(), sg.PublicKey(), cfg.Data, db.Dialect, map[bool]string{true: ", SIMULATED TEE"}[o.Dev])
	log.Info("chatmcp-signer serving", "addr", l.Addr().String(), "key", sg.PublicKey().String(), "fee_payer_only", cfg.Policy.FeePayerOnly, "dev", o.Dev)
	if o.Ready != nil {
		o.Ready(l.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(tls.NewListener(l, tlsConf)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	return alog.Close()
}

// pinWriter keeps DATA/tls-pins.json naming the current RA-TLS key (and
// the one before), for local admin commands that trust the data
// directory instead of an attestation policy.
type pinWriter struct {
	path string
	mu   sync.Mutex
	last string
}

func (p *pinWriter) write(c *tls.Certificate) error {
	sum := sha256.Sum256(c.Leaf.RawSubjectPublicKeyInfo)
	h := hex.EncodeToString(sum[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	if h == p.last {
		return nil
	}
	pins := struct {
		SPKI []string `json:"spki_sha256"`
	}{[]string{h}}
	if p.last != "" {
		pins.SPKI = append(pins.SPKI, p.last)
	}
	b, _ := json.MarshalIndent(pins, "", "  ")
	if err := keyfile.WriteAtomic(p.path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing tls pins: %w", err)
	}
	p.last = h
	return nil
}
