// Package gateway is the chatmcp-gateway server: an attested (RA-TLS) MCP
// endpoint that aggregates upstream MCP servers and lets a client do only
// what its capability token, the Cedar policy, the tool pins and, for
// non-read-only tools, a person allow, auditing every call and keeping the
// upstreams' credentials out of everything it sends back.
//
// The pieces live in subpackages, one responsibility each: catalog (names
// and pins), authz (tokens, revocations, Cedar), approval (held calls),
// redact (secret scrubbing), credential (layer-2 sealed credentials) and
// upstream (MCP client connections). This package wires them to HTTP and
// to the MCP SDK.
package gateway

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
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
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/gateway/approval"
	"github.com/chatmcp/chatmcp/gateway/authz"
	"github.com/chatmcp/chatmcp/gateway/catalog"
	"github.com/chatmcp/chatmcp/gateway/credential"
	"github.com/chatmcp/chatmcp/gateway/redact"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/internal/keyfile"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/ratls"
	"github.com/chatmcp/chatmcp/store"
)

// SecretSource yields layer-1 secrets by name. kbsclient.Client implements it
// (Fetch runs the attestation handshake with the KBS).
type SecretSource interface {
	Fetch(ctx context.Context, name string) ([]byte, error)
}

// AuditLog records entries durably; *audit.Log implements it. An error
// means the entry may not be recorded, and the gateway then refuses.
type AuditLog interface {
	Append(ctx context.Context, e audit.Entry) error
}

// Options are the gateway's injected dependencies.
type Options struct {
	// Attester produces the evidence in the RA-TLS certificate and at the
	// attestation endpoint. Required (sim.Attester in --dev).
	Attester attest.Attester
	// Secrets fetches layer-1 secrets at start. Required when the config
	// refers to any {secret: NAME}.
	Secrets SecretSource
	// Audit is the audit log. If nil, DATA/audit.jsonl is opened with a
	// signing key kept in DATA/audit.key.
	Audit AuditLog
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Logger receives operational logs (never secret values). If nil,
	// slog.Default().
	Logger *slog.Logger
	// UpstreamHTTPClient carries requests to url upstreams. If nil, a
	// default client.
	UpstreamHTTPClient *http.Client
	// Getenv reads the environment passed (in part) to stdio upstreams.
	// If nil, os.Getenv.
	Getenv func(string) string
	// Dev marks a development gateway running on simulated evidence; it
	// only changes what /admin/v1/info and the logs say.
	Dev bool
	// Metrics records requests per route, tools/call decisions, approvals
	// and audit latency. If nil, nothing is recorded.
	Metrics *ops.Gateway
	// ApprovalProgressInterval is how often a call held for approval sends
	// its caller a progress notification, when the caller sent a progress
	// token. If zero, DefaultApprovalProgressInterval (10 seconds).
	ApprovalProgressInterval time.Duration
	// NoFastPath sends every request through the SDK's handlers, also the
	// 2026-07-28 read-only tools/call that fastpath.go serves itself (for
	// tests that compare the two, and for benchmarks). If false, the fast
	// path is on.
	NoFastPath bool
}

// Server is a running gateway. Create it with New, serve with Serve, stop
// with Close.
type Server struct {
	cfg  *Config
	opts Options
	now  func() time.Time
	log  *slog.Logger

	issuer     *ratls.Issuer
	tokens     *authz.Tokens
	policy     *authz.Policy
	pins       *catalog.Pins
	approvals  *approval.Broker
	redactor   *redact.Redactor
	creds      *credential.Store
	credKey    *credential.Key
	audit      AuditLog
	closeAudit func() error
	refusals   refusalLimiter // rate limit of audited refusals (refusal.go)
	live       liveRequests   // HTTP requests in progress, shutdown (cancel.go)
	rounds     rounds         // held calls of stateless clients between rounds (call_confirm_roundtrip.go)
	db         *store.DB
	adminToken []byte
	secrets    map[string][]byte

	mcp       *mcp.Server
	impl      *mcp.Implementation // the gateway's name to clients
	handler   http.Handler
	fastCalls atomic.Int64 // requests served by the fast path (fastpath.go)
	postIDs   atomic.Int64 // JSON-RPC ids of the calls postCall sends

	stateSealer cipher.AEAD // seals upstreams' input-round states (inputround.go)

	mu        sync.RWMutex
	tools     map[string]*tool    // exposed name → tool, enabled or not
	upstreams map[string]*backend // by name
	sessions  map[string]*session // MCP session id → session

	pinsMu   sync.Mutex
	lastSPKI string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New builds a gateway from cfg: it opens the data directory, fetches the
// layer-1 secrets (failing when any is missing), connects to every
// upstream, pins their tools and issues the first RA-TLS certificate.
func New(ctx context.Context, cfg *Config, opts *Options) (_ *Server, err error) {
	if cfg == nil {
		return nil, errors.New("gateway: nil config")
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	if opts == nil || opts.Attester == nil {
		return nil, errors.New("gateway: an attester is required")
	}
	s := &Server{
		cfg:       cfg,
		opts:      *opts,
		now:       opts.Now,
		log:       opts.Logger,
		tools:     map[string]*tool{},
		upstreams: map[string]*backend{},
		sessions:  map[string]*session{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("gateway: data directory: %w", err)
	}

	// Layer-1 secrets first: without them the gateway must not start.
	s.secrets = map[string][]byte{}
	names := cfg.SecretNames()
	if len(names) > 0 && opts.Secrets == nil {
		return nil, errors.New("gateway: the config refers to secrets but no secret source is configured")
	}
	var values [][]byte
	for _, n := range names {
		v, err := opts.Secrets.Fetch(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("gateway: fetching secret %q from the KBS: %w", n, err)
		}
		if len(v) == 0 {
			return nil, fmt.Errorf("gateway: secret %q is empty", n)
		}
		if len(v) < redact.MinLen {
			return nil, fmt.Errorf("gateway: secret %q is %d bytes, shorter than the %d bytes exact-value redaction needs", n, len(v), redact.MinLen)
		}
		s.secrets[n] = v
		values = append(values, v)
	}
	s.redactor = redact.New(values...)

	var revs *authz.Revocations
	if s.db, revs, err = openStorage(ctx, cfg, s.now, s.log); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	// Other replicas' revocations arrive through the database; without
	// Run the list goes stale and every token is refused (fail closed).
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		revs.Run(s.ctx)
	}()
	key, err := captoken.LoadOrCreateKey(filepath.Join(cfg.Data, "token.key"))
	if err != nil {
		return nil, fmt.Errorf("gateway: token key: %w", err)
	}
	s.tokens = authz.NewTokens(key, "chatmcp-gateway:"+key.Fingerprint(), revs, s.now)
	if cfg.Policy != "" {
		if s.policy, err = authz.LoadPolicy(cfg.Policy); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	if s.adminToken, err = loadOrCreateAdminToken(filepath.Join(cfg.Data, "admin.token")); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if s.pins, err = catalog.OpenPins(filepath.Join(cfg.Data, "pins.json"), s.now); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.audit = opts.Audit
	if s.audit == nil {
		signer, err := audit.LoadOrCreateKey(filepath.Join(cfg.Data, "audit.key"))
		if err != nil {
			return nil, fmt.Errorf("gateway: audit key: %w", err)
		}
		l, err := audit.Open(ctx, filepath.Join(cfg.Data, "audit.jsonl"), &audit.Options{Signer: signer, Now: s.now, Observer: opts.Metrics.AuditMetrics()})
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		s.audit, s.closeAudit = l, l.Close
	}
	s.approvals = approval.New(&approval.Options{Timeout: time.Duration(cfg.ApprovalTimeout), Now: s.now})
	s.instrument()
	s.creds = credential.NewStore(s.now)
	if s.credKey, err = credential.NewKey(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}

	s.issuer = ratls.NewIssuer(opts.Attester, &ratls.IssuerOptions{Now: s.now})
	if _, err := s.certificate(ctx); err != nil {
		return nil, fmt.Errorf("gateway: RA-TLS certificate: %w", err)
	}

	if s.stateSealer, err = newStateSealer(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.impl = &mcp.Implementation{Name: "chatmcp-gateway", Version: "v1"}
	s.mcp = mcp.NewServer(s.impl, &mcp.ServerOptions{
		Logger: s.log,
		Capabilities: &mcp.ServerCapabilities{
			Tools:       &mcp.ToolCapabilities{ListChanged: true},
			Resources:   &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
			Prompts:     &mcp.PromptCapabilities{ListChanged: true},
			Logging:     &mcp.LoggingCapabilities{},
			Completions: &mcp.CompletionCapabilities{},
		},
		// Pass-through of completions and subscriptions (completion.go,
		// subscribe.go).
		CompletionHandler:  s.complete,
		SubscribeHandler:   s.subscribe,
		UnsubscribeHandler: s.unsubscribe,
	})
	s.mcp.AddReceivingMiddleware(s.middleware)

	for _, name := range cfg.UpstreamNames() {
		if err := s.startUpstream(ctx, cfg.Upstreams[name]); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	s.handler = opts.Metrics.HTTPMetrics().Handler(s.checkHost(s.routes()))

	s.wg.Add(2)
	go s.housekeeping()
	go s.flushRefusals()
	return s, nil
}

// Handler returns the gateway's HTTP handler (for tests and embedding; Serve
// wraps it in TLS).
func (s *Server) Handler() http.Handler { return s.handler }

// Audience is the audience capability tokens for this gateway carry.
func (s *Server) Audience() string { return s.tokens.Audience() }

// AdminToken returns the admin bearer token (also in DATA/admin.token).
func (s *Server) AdminToken() string { return string(s.adminToken) }

// TLSConfig returns the RA-TLS server configuration.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.certificate(hello.Context())
		},
	}
}

// Serve serves HTTPS on l until ctx ends or Close is called.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	// Requests' contexts end with base: at shutdown, a handler waiting on
	// its client stops waiting.
	base, stopBase := context.WithCancel(s.ctx)
	defer stopBase()
	hs := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(l, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
	// Cancel what is still running (upstream calls get
	// notifications/cancelled, held calls are abandoned), then close the
	// MCP sessions: a session's Close waits for its handlers, and its
	// long-lived response streams would otherwise hold the graceful
	// shutdown. All of it within ShutdownTimeout.
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout-shutdownGrace)
	defer cancel()
	s.cancelRequests()
	closed := make(chan struct{})
	var open []*mcp.ServerSession
	for ss := range s.mcp.Sessions() {
		open = append(open, ss)
	}
	go func() {
		var wg sync.WaitGroup
		for _, ss := range open {
			wg.Add(1)
			go func() { defer wg.Done(); ss.Close() }()
		}
		wg.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-sctx.Done():
		s.log.Warn("shutdown: MCP sessions still closing", "timeout", ShutdownTimeout)
	}
	// Then the HTTP requests still open: cancelled, given shutdownGrace to
	// end, then their connections closed.
	stopBase()
	gctx, gcancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer gcancel()
	if hs.Shutdown(gctx) != nil {
		hs.Close()
	}
	<-errc
	return nil
}

// Close stops the gateway: upstream connections and processes are closed,
// the audit log is sealed, the database closed. It is idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.cancelRequests()
		s.mu.Lock()
		ups := s.upstreams
		s.upstreams = map[string]*backend{}
		s.mu.Unlock()
		// Upstreams close in parallel, within ShutdownTimeout: one that
		// does not answer its DELETE, or a process that ignores its stdin
		// closing, does not hold the others.
		var wg sync.WaitGroup
		for _, u := range ups {
			wg.Add(1)
			go func() { defer wg.Done(); u.close() }()
		}
		closed := make(chan struct{})
		go func() { wg.Wait(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(ShutdownTimeout):
			s.log.Warn("shutdown: upstream connections still closing", "timeout", ShutdownTimeout)
		}
		s.wg.Wait()
		if s.closeAudit != nil {
			err = errors.Join(err, s.closeAudit())
		}
		if s.db != nil {
			err = errors.Join(err, s.db.Close())
		}
	})
	return err
}

// certificate returns the current RA-TLS certificate and rewrites
// DATA/tls-pins.json when its key changed.
func (s *Server) certificate(ctx context.Context) (*tls.Certificate, error) {
	c, err := s.issuer.Certificate(ctx)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(c.Leaf.RawSubjectPublicKeyInfo)
	h := hex.EncodeToString(sum[:])
	s.pinsMu.Lock()
	defer s.pinsMu.Unlock()
	if h != s.lastSPKI {
		pins := struct {
			SPKI []string `json:"spki_sha256"`
		}{[]string{h}}
		if s.lastSPKI != "" {
			pins.SPKI = append(pins.SPKI, s.lastSPKI)
		}
		b, _ := json.MarshalIndent(pins, "", "  ")
		if err := keyfile.WriteAtomic(filepath.Join(s.cfg.Data, "tls-pins.json"), append(b, '\n'), 0o644); err != nil {
			return nil, fmt.Errorf("writing tls pins: %w", err)
		}
		s.lastSPKI = h
	}
	return c, nil
}

// housekeeping rotates the certificate ahead of handshakes and sweeps
// expired credentials and sessions.
func (s *Server) housekeeping() {
	defer s.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if _, err := s.certificate(s.ctx); err != nil {
				s.log.Error("RA-TLS certificate renewal failed", "err", err)
			}
			s.creds.Sweep()
			s.dropExpiredStateless()
		}
	}
}

// loadOrCreateAdminToken reads path or creates it (keyfile.LoadOrCreate:
// 0600, atomic, synced) with 32 random bytes in hex.
func loadOrCreateAdminToken(path string) ([]byte, error) {
	b, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		var raw [32]byte
		if _, err := io.ReadFull(rand.Reader, raw[:]); err != nil {
			return nil, err
		}
		return []byte(hex.EncodeToString(raw[:]) + "\n"), nil
	})
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	t := []byte(strings.TrimSpace(string(b)))
	if len(t) < 32 {
		return nil, fmt.Errorf("admin token in %s is too short", path)
	}
	return t, nil
}

func (s *Server) isAdmin(r *http.Request) bool {
	tok, err := edge.Bearer(r)
	return err == nil && subtle.ConstantTimeCompare([]byte(tok), s.adminToken) == 1
}

// DataDir is the data directory in use.
func (s *Server) DataDir() string { return s.cfg.Data }
