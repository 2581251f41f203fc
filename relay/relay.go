// Package relay is the ChatMCP message relay server: it signs users in with
// Sign-In With Solana, publishes wallet-certified device keys, enforces
// conversation membership, consent lists and stamps, stores end-to-end
// encrypted envelopes (ciphertext only) in SQLite or PostgreSQL, and pushes
// them to watchers over WebSocket. It never holds a key that decrypts a
// message, and it links no KBS or gateway code.
package relay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/store"
)

// Options configure a Server. The zero value of each field is documented.
type Options struct {
	// Domain is the Sign-In With Solana domain the relay accepts (the host
	// and port clients reach it at). Required.
	Domain string
	// ChainID is the sign-in chain ID required. If empty, "mainnet".
	ChainID string
	// NonceTTL is how long a sign-in nonce stays valid. If zero, 5 minutes.
	NonceTTL time.Duration
	// SessionTTL is how long a session lasts. If zero, 24 hours.
	SessionTTL time.Duration
	// MaxSkew is how far a client's clock (sign-in issue time, envelope
	// time) may be from the relay's. If zero, 5 minutes.
	MaxSkew time.Duration
	// DefaultDifficulty is the proof-of-work difficulty for users who set
	// none. If zero, stamp.DefaultBits; negative means 0 (tests only).
	DefaultDifficulty int
	// Stamps are the verifiers by stamp kind. If nil, proof of work only.
	Stamps map[string]stamp.Verifier
	// Payments, if set, accepts x402 payment stamps to recipients who set
	// a price, settled through its facilitator, and lets users set prices.
	// If nil, prices are refused and so are payment stamps.
	Payments *stamp.Payment
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Rand is the randomness source. If nil, crypto/rand.Reader.
	Rand io.Reader
	// Logger logs operational events (never content). If nil, discarded.
	Logger *slog.Logger
	// PollInterval is how often watchers re-read the store even without a
	// notification. If zero, 30 seconds.
	PollInterval time.Duration
	// Metrics counts stored messages and live watchers. If nil, nothing is
	// recorded.
	Metrics *ops.Relay
}

// notifyChannel is the PostgreSQL channel replicas tell each other about
// new deliveries on; the payload is the recipients' addresses.
const notifyChannel = "chatmcp_relay"

// Server is a relay. Create it with New; it is an http.Handler.
type Server struct {
	db   *store.DB
	opts Options
	mux  *http.ServeMux
	hub  *hub
	edge *edge.Server
}

// New migrates db and returns a Server.
func New(ctx context.Context, db *store.DB, opts *Options) (*Server, error) {
	if opts == nil || opts.Domain == "" {
		return nil, errors.New("relay: Options.Domain is required")
	}
	o := *opts
	if o.ChainID == "" {
		o.ChainID = "mainnet"
	}
	if o.NonceTTL == 0 {
		o.NonceTTL = 5 * time.Minute
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = 24 * time.Hour
	}
	if o.MaxSkew == 0 {
		o.MaxSkew = 5 * time.Minute
	}
	if o.DefaultDifficulty == 0 {
		o.DefaultDifficulty = stamp.DefaultBits
	} else if o.DefaultDifficulty < 0 {
		o.DefaultDifficulty = 0
	}
	if o.Stamps == nil {
		o.Stamps = map[string]stamp.Verifier{stamp.KindPoW: stamp.PoW{}}
	}
	if o.Payments != nil {
		o.Stamps = maps.Clone(o.Stamps)
		o.Stamps[stamp.KindX402] = o.Payments
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollInterval == 0 {
		o.PollInterval = 30 * time.Second
	}
	if err := db.Migrate(ctx, "relay", migrations); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	s := &Server{db: db, opts: o, mux: http.NewServeMux(), hub: newHub(), edge: &edge.Server{Name: "relay", Codes: codes, Logger: o.Logger}}
	s.routes()
	o.Metrics.SetWatchers(s.hub.count)
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("POST "+relayapi.PathNonce, s.handleNonce)
	s.mux.HandleFunc("POST "+relayapi.PathLogin, s.handleLogin)
	s.mux.HandleFunc("GET "+relayapi.PathUsers+"/{address}", s.authed(s.handleUser))
	s.mux.HandleFunc("GET "+relayapi.PathDevices, s.authed(s.handleDevices))
	s.mux.HandleFunc("POST "+relayapi.PathRevokeDevice, s.authed(s.handleRevoke))
	s.mux.HandleFunc("POST "+relayapi.PathConversations, s.authed(s.handleCreate))
	s.mux.HandleFunc("GET "+relayapi.PathConversations, s.authed(s.handleConversations))
	s.mux.HandleFunc("GET "+relayapi.PathConversations+"/{id}", s.authed(s.handleConversation))
	s.mux.HandleFunc("POST "+relayapi.PathConversations+"/{id}/ops", s.authed(s.handleOp))
	s.mux.HandleFunc("POST "+relayapi.PathMessages, s.authed(s.handleSend))
	s.mux.HandleFunc("GET "+relayapi.PathMessages, s.authed(s.handleMessages))
	s.mux.HandleFunc("PUT "+relayapi.PathConsent, s.authed(s.handleConsent))
	s.mux.HandleFunc("PUT "+relayapi.PathSettings, s.authed(s.handleSettings))
	s.mux.HandleFunc("GET "+relayapi.PathWatch, s.authed(s.handleWatch))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusNotFound, relayapi.ReasonNoEndpoint, "no such endpoint %s %s", r.Method, r.URL.Path))
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Run fans notifications from other replicas out to this replica's
// watchers until ctx is done. On SQLite (one process) it only waits. Call
// it once, in its own goroutine, after New; ready is closed once the relay
// listens for other replicas' notifications.
func (s *Server) Run(ctx context.Context, ready chan<- struct{}) error {
	if s.db.Dialect != store.Postgres {
		close(ready)
		<-ctx.Done()
		return nil
	}
	l, err := store.Listen(ctx, s.db.DSN, notifyChannel)
	if err != nil {
		close(ready)
		return fmt.Errorf("relay: %w", err)
	}
	defer l.Close()
	close(ready)
	for {
		payload, err := l.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, store.ErrReconnected):
			s.hub.wakeAll()
		case err != nil:
			s.opts.Logger.Warn("relay: notification listener failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		default:
			s.hub.wake(strings.Split(payload, ","))
		}
	}
}

// hub tracks this replica's watchers by recipient address.
type hub struct {
	mu       sync.Mutex
	watchers map[string]map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{watchers: map[string]map[chan struct{}]struct{}{}} }

func (h *hub) add(addr string) chan struct{} {
	c := make(chan struct{}, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.watchers[addr] == nil {
		h.watchers[addr] = map[chan struct{}]struct{}{}
	}
	h.watchers[addr][c] = struct{}{}
	return c
}

func (h *hub) remove(addr string, c chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.watchers[addr], c)
	if len(h.watchers[addr]) == 0 {
		delete(h.watchers, addr)
	}
}

func (h *hub) wake(addrs []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range addrs {
		for c := range h.watchers[a] {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}

func (h *hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.watchers {
		for c := range set {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}
