// Package devstack starts ChatMCP's development stack in one process on
// loopback: a key broker in --dev mode, an example MCP upstream, a gateway
// in front of it and a messaging relay, all on the INSECURE simulated TEE. It backs
// `chatmcp dev` and the end-to-end tests; nothing in it is for production.
package devstack

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

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/examples/notes"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/kbs/daemon"
	"github.com/chatmcp/chatmcp/kbsclient"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/store"
)

// NotesSecret is the KBS secret the built-in notes upstream requires as its
// X-Api-Key header: it shows a layer-1 credential travelling from the KBS
// through the attested gateway to an upstream, never to the client.
const NotesSecret = "notes-api-key"

// Options configure Start.
type Options struct {
	// Dir holds the KBS data (Dir/kbs), the gateway data (Dir/gateway) and
	// the policy file. Required.
	Dir string
	// Listen is the gateway's address. If empty, 127.0.0.1:0 (any free
	// port). It must be a loopback address.
	Listen string
	// Upstreams replaces the built-in notes upstream: the value of the
	// gateway config's "upstreams:" key, in YAML (docs/gateway.md). If
	// empty, one upstream "notes" serves package notes over streamable HTTP
	// on loopback, behind an X-Api-Key header holding the KBS secret
	// NotesSecret.
	Upstreams string
	// GatewayConfig is appended to the gateway config: more top-level keys
	// in YAML (e.g. "facilitator:" for paid tools). If empty, none.
	GatewayConfig string
	// Secrets are put into the KBS before the gateway starts, each under a
	// policy that releases it only to this process's simulated measurement.
	Secrets map[string][]byte
	// ApprovalTimeout is how long gated calls wait. If zero, the gateway's
	// default.
	ApprovalTimeout time.Duration
	// RelayListen is the relay's address. If empty, 127.0.0.1:0 (any free
	// port). It must be a loopback address.
	RelayListen string
	// StampBits is the relay's proof-of-work difficulty for users who set
	// none (relay.Options.DefaultDifficulty). If zero, the relay's default;
	// tests lower it so that first contacts cost milliseconds.
	StampBits int
	// Log receives the KBS banner and operational logs. If nil, io.Discard.
	Log io.Writer
	// Metrics gives each daemon an ops server (/healthz, /readyz,
	// /metrics) on a free loopback port, its URL in the Stack's *OpsURL
	// fields. If false, there are none.
	Metrics bool
}

// Stack is a running development stack.
type Stack struct {
	// KBSURL is the key broker (plain HTTP, loopback).
	KBSURL string
	// GatewayURL is the gateway, https://127.0.0.1:PORT (RA-TLS, sim).
	GatewayURL string
	// GatewayData is the gateway's data directory (admin.token,
	// tls-pins.json, audit.jsonl).
	GatewayData string
	// PolicyFile is an attestation policy accepting exactly this process's
	// simulated measurement, for `chatmcp connect --policy`.
	PolicyFile string
	// Gateway is the gateway itself.
	Gateway *gateway.Server
	// Admin calls the gateway's admin API, trusting it by its TLS pins.
	Admin *gwclient.Admin
	// Measurement is the simulated measurement, hex.
	Measurement string
	// RelayURL is the messaging relay (plain HTTP, loopback, SQLite in
	// Dir/relay).
	RelayURL string
	// KBSOpsURL, GatewayOpsURL and RelayOpsURL are the daemons' ops
	// servers, http://127.0.0.1:PORT serving /healthz, /readyz and
	// /metrics. Empty unless Options.Metrics.
	KBSOpsURL, GatewayOpsURL, RelayOpsURL string

	stop func()
}

// Start brings the stack up. Close it to stop everything.
func Start(ctx context.Context, o *Options) (_ *Stack, err error) {
	if o == nil || o.Dir == "" {
		return nil, errors.New("devstack: Dir is required")
	}
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	logger := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	att, err := sim.NewAttester(nil)
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	st := &Stack{Measurement: hex.EncodeToString(att.Measurement())}
	runCtx, cancel := context.WithCancel(context.Background())
	var stops []func()
	st.stop = func() {
		cancel()
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			st.stop()
		}
	}()

	// Policy: sim, this measurement only.
	policy := fmt.Sprintf("# INSECURE development policy written by chatmcp dev: it accepts the\n# SIMULATED TEE, whose evidence anyone can forge.\nallow: [sim]\nsim:\n  measurement: [%s]\n", st.Measurement)
	st.PolicyFile = filepath.Join(o.Dir, "dev-policy.yaml")
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	if err := os.WriteFile(st.PolicyFile, []byte(policy), 0o600); err != nil {
		return nil, fmt.Errorf("devstack: writing policy: %w", err)
	}

	o11y := &opsSet{}
	if o.Metrics {
		if o11y, err = st.startOps(logger, &stops); err != nil {
			return nil, err
		}
	}

	// Key broker.
	kbsDir := filepath.Join(o.Dir, "kbs")
	ready := make(chan net.Addr, 1)
	kbsDone := make(chan error, 1)
	go func() {
		kbsDone <- daemon.Run(runCtx, &daemon.Options{Listen: "127.0.0.1:0", Data: kbsDir, Dev: true, Stderr: logw, Ready: func(a net.Addr) { ready <- a },
			Metrics: o11y.kbs, Readiness: o11y.kbsReady})
	}()
	select {
	case a := <-ready:
		st.KBSURL = "http://" + a.String()
	case err := <-kbsDone:
		return nil, fmt.Errorf("devstack: key broker: %w", err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	stops = append(stops, func() { <-kbsDone })
	kbsToken, err := os.ReadFile(filepath.Join(kbsDir, daemon.FileAdminToken))
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	kadmin := &kbsclient.AdminClient{BaseURL: st.KBSURL, Token: string(trimNL(kbsToken))}
	secrets := map[string][]byte{}
	for k, v := range o.Secrets {
		secrets[k] = v
	}

	upstreams := o.Upstreams
	if upstreams == "" {
		key := make([]byte, 16)
		rand.Read(key)
		secrets[NotesSecret] = []byte("notes-" + hex.EncodeToString(key))
		url, stopNotes, err := serveNotes(string(secrets[NotesSecret]))
		if err != nil {
			return nil, err
		}
		stops = append(stops, stopNotes)
		upstreams = fmt.Sprintf("notes:\n  url: %q\n  headers:\n    X-Api-Key: {secret: %s}\n", url, NotesSecret)
	}
	for name, v := range secrets {
		if _, err := kadmin.Put(ctx, name, v, policy); err != nil {
			return nil, fmt.Errorf("devstack: putting secret %s into the key broker: %w", name, err)
		}
	}

	// Gateway.
	listen := o.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("devstack: gateway listener: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("devstack: %s is not a loopback address", listen)
	}
	st.GatewayData = filepath.Join(o.Dir, "gateway")
	cfgYAML := fmt.Sprintf("listen: %q\ndata: %q\nkbs: %q\nupstreams:\n%s", ln.Addr().String(), st.GatewayData, st.KBSURL, indent(upstreams))
	if o.ApprovalTimeout > 0 {
		cfgYAML += fmt.Sprintf("approval_timeout: %s\n", o.ApprovalTimeout)
	}
	cfgYAML += o.GatewayConfig
	cfg, err := gateway.ParseConfig([]byte(cfgYAML))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("devstack: gateway config: %w", err)
	}
	gw, err := gateway.New(ctx, cfg, &gateway.Options{
		Attester: att,
		Secrets:  &kbsclient.Client{BaseURL: st.KBSURL, Attester: att},
		Logger:   logger,
		Dev:      true,
		Metrics:  o11y.gateway,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("devstack: %w", err)
	}
	o11y.gatewayReady.Set(gw.ReadyChecks()...)
	st.Gateway = gw
	gwDone := make(chan error, 1)
	go func() { gwDone <- gw.Serve(runCtx, ln) }()
	stops = append(stops, func() { <-gwDone; gw.Close() })
	st.GatewayURL = "https://" + ln.Addr().String()

	trust := &gwclient.Trust{PinsFile: filepath.Join(st.GatewayData, "tls-pins.json")}
	tlsConf, err := trust.TLSConfig()
	if err != nil {
		return nil, err
	}
	st.Admin = &gwclient.Admin{BaseURL: st.GatewayURL, Token: gw.AdminToken(), HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}}

	// Relay: it shares nothing with the KBS and gateway but the process.
	relayURL, stopRelay, err := serveRelay(runCtx, filepath.Join(o.Dir, "relay"), o.RelayListen, o.StampBits, logger, o11y.relay, o11y.relayReady)
	if err != nil {
		return nil, err
	}
	stops = append(stops, stopRelay)
	st.RelayURL = relayURL
	return st, nil
}

// serveRelay runs a relay on loopback with SQLite in dir.
func serveRelay(ctx context.Context, dir, listen string, stampBits int, logger *slog.Logger, m *ops.Relay, ready *ops.Readiness) (url string, stop func(), err error) {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", nil, fmt.Errorf("devstack: relay listener: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return "", nil, fmt.Errorf("devstack: relay address %s is not a loopback address", listen)
	}
	db, err := store.Open(ctx, filepath.Join(dir, "relay.db"))
	if err != nil {
		ln.Close()
		return "", nil, fmt.Errorf("devstack: relay store: %w", err)
	}
	rs, err := relay.New(ctx, db, &relay.Options{Domain: ln.Addr().String(), Logger: logger, Metrics: m, DefaultDifficulty: stampBits})
	if err != nil {
		ln.Close()
		db.Close()
		return "", nil, fmt.Errorf("devstack: %w", err)
	}
	runDone := make(chan struct{})
	fanout := make(chan struct{})
	runCtx, cancel := context.WithCancel(ctx)
	go func() { rs.Run(runCtx, fanout); close(runDone) }()
	ready.Set(relay.StoreCheck(db))
	go func() {
		select {
		case <-fanout:
			ready.Done("fanout")
		case <-runDone:
		}
	}()
	srv := &http.Server{Handler: m.HTTPMetrics().Handler(rs), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		cancel()
		<-runDone
		db.Close()
	}, nil
}

// Close stops the gateway, the upstream and the key broker, in that order.
func (s *Stack) Close() { s.stop() }

// indent indents a YAML block by two spaces.
func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// serveNotes serves the example notes server on loopback, refusing
// requests without the right X-Api-Key.
func serveNotes(apiKey string) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("devstack: notes listener: %w", err)
	}
	h := notes.Handler(notes.NewServer(notes.NewNotebook()))
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != apiKey {
			http.Error(w, "missing or wrong X-Api-Key", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/mcp", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
