package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A Pool holds the connections to one upstream: one shared by every client
// session, and for an upstream that needs layer-2 credentials one per
// (principal, client session), dialled with that principal's values. A
// connection that goes away (the stdio process exits, the HTTP session ends)
// is forgotten, and the next call that needs it dials again.
type Pool struct {
	opts   PoolOptions
	ctx    context.Context // connections' lifetime: until Close
	cancel context.CancelFunc
	ids    atomic.Uint64 // call ids, unique across the pool's connections

	dialMu sync.Mutex // serializes redialling of the shared connection

	mu     sync.Mutex
	shared *Conn
	bySes  map[Key]*Conn
	closed bool
	wg     sync.WaitGroup // watchers
}

// PoolOptions configure a Pool.
type PoolOptions struct {
	// Name is the upstream's configured name, for logs.
	Name string
	// PerSession gives each Key its own connection, dialled with the Spec
	// for that Key; the shared connection then only lists the upstream's
	// features and no call uses it. If false, every call uses the shared
	// connection.
	PerSession bool
	// Spec resolves the upstream's values for a connection: the zero Key for
	// the shared one, which carries no layer-2 credentials; otherwise the
	// Key's. Its error names what is missing, never a value, and reaches the
	// caller. Required.
	Spec func(Key) (*Spec, error)
	// Client returns the MCP client options of a new connection c: the
	// handlers of what the upstream sends. c has no client session yet when
	// it is called. If nil, none.
	Client func(c *Conn) *mcp.ClientOptions
	// Receiving returns the middleware of a new connection c
	// (Options.Receiving). If nil, none.
	Receiving func(c *Conn) mcp.Middleware
	// Ready runs on a redialled shared connection before it is installed and
	// any call uses it (the gateway re-checks the tools' pins); an error
	// closes the connection and the call gets ErrUnavailable. If nil,
	// nothing runs.
	Ready func(ctx context.Context, c *Conn) error
	// Dial carries the HTTP client and environment of Dial; its Client field
	// is ignored (see Client). If nil, Dial's defaults.
	Dial *Options
	// Logger receives lost connections and refused log levels, never a
	// value of the Spec. If nil, slog.Default().
	Logger *slog.Logger
	// DialTimeout bounds a dial: starting or reaching the upstream and the
	// MCP handshake. If zero, 30 seconds.
	DialTimeout time.Duration
}

// Key names a per-session connection: the principal id (the token chain's)
// and the MCP session id of the client it serves. A token attenuated from
// another is another principal, so it never shares a connection.
type Key struct {
	Principal, Session string
}

// Errors of Get, safe to send to the caller: neither carries the cause,
// which may hold a credential.
var (
	// ErrUnavailable: the shared connection could not be redialled, or its
	// Ready check failed.
	ErrUnavailable = errors.New("upstream unavailable")
	// ErrSessionDial: dialling with the caller's own credentials failed.
	ErrSessionDial = errors.New("connecting with your credentials failed")
)

// NewPool returns a pool with no connection: Connect dials the shared one.
func NewPool(opts *PoolOptions) *Pool {
	p := &Pool{opts: *opts, bySes: map[Key]*Conn{}}
	if p.opts.Logger == nil {
		p.opts.Logger = slog.Default()
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// Connect dials the shared connection and installs it before it returns,
// so that list-changed notifications already arriving on it see it
// installed (Shared). Its errors name the upstream.
func (p *Pool) Connect(ctx context.Context) (*Conn, error) {
	sp, err := p.opts.Spec(Key{})
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", p.opts.Name, err)
	}
	c, err := p.dial(ctx, Key{}, sp)
	if err != nil {
		return nil, err
	}
	if !p.install(c) {
		return nil, ErrUnavailable
	}
	return c, nil
}

// PerSession reports whether calls use per-session connections
// (PoolOptions.PerSession).
func (p *Pool) PerSession() bool { return p.opts.PerSession }

// Shared returns the shared connection, nil while there is none.
func (p *Pool) Shared() *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shared
}

// Get returns the connection a call for key uses: the shared one (dialled
// again if it went away), or for a PerSession pool key's own, dialled on
// first use.
func (p *Pool) Get(ctx context.Context, key Key) (*Conn, error) {
	if !p.opts.PerSession {
		if c := p.Shared(); c != nil {
			return c, nil
		}
		return p.redial(ctx)
	}
	p.mu.Lock()
	c := p.bySes[key]
	p.mu.Unlock()
	if c != nil {
		return c, nil
	}
	sp, err := p.opts.Spec(key)
	if err != nil {
		return nil, err // names the missing credential, never a value
	}
	c, err = p.dial(p.ctx, key, sp)
	if err != nil {
		return nil, ErrSessionDial
	}
	if !p.install(c) {
		// Another call of the same key won the race, or the pool closed.
		p.mu.Lock()
		old := p.bySes[key]
		p.mu.Unlock()
		if old == nil {
			return nil, ErrUnavailable
		}
		return old, nil
	}
	return c, nil
}

// redial dials the shared connection again and runs Ready on it before
// any call uses it.
func (p *Pool) redial(ctx context.Context) (*Conn, error) {
	p.dialMu.Lock()
	defer p.dialMu.Unlock()
	if c := p.Shared(); c != nil {
		return c, nil
	}
	sp, err := p.opts.Spec(Key{})
	if err != nil {
		return nil, err
	}
	c, err := p.dial(p.ctx, Key{}, sp)
	if err != nil {
		return nil, ErrUnavailable
	}
	if p.opts.Ready != nil {
		if err := p.opts.Ready(ctx, c); err != nil {
			c.cs.Close()
			return nil, ErrUnavailable
		}
	}
	if !p.install(c) {
		return nil, ErrUnavailable
	}
	return c, nil
}

// dial connects a new Conn with the handlers of PoolOptions.Client and
// asks the upstream for every log level: each client session's own level
// filters what it receives.
func (p *Pool) dial(ctx context.Context, key Key, sp *Spec) (*Conn, error) {
	c := &Conn{key: key, ids: &p.ids, inflight: map[uint64]*Call{}, nonce: newNonce()}
	var dopts Options
	if p.opts.Dial != nil {
		dopts = *p.opts.Dial
	}
	dopts.tap = c
	dopts.route = &c.route
	dopts.Client, dopts.Receiving = nil, nil
	if p.opts.Client != nil {
		dopts.Client = p.opts.Client(c)
	}
	if p.opts.Receiving != nil {
		dopts.Receiving = p.opts.Receiving(c)
	}
	timeout := p.opts.DialTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cs, err := Dial(ctx, sp, &dopts)
	if err != nil {
		return nil, err
	}
	c.cs = cs
	if caps := cs.InitializeResult().Capabilities; caps != nil && caps.Logging != nil {
		if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
			p.opts.Logger.Warn("upstream refused logging/setLevel", "upstream", p.opts.Name, "err", err)
		}
	}
	return c, nil
}

// install records c as the shared connection (zero key) or as its key's,
// and watches it. It reports false, closing c, when the pool is closed or
// the key already has a connection.
func (p *Pool) install(c *Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	taken := c.key == Key{} && p.shared != nil || c.key != Key{} && p.bySes[c.key] != nil
	if p.closed || taken {
		c.cs.Close()
		return false
	}
	if c.key == (Key{}) {
		p.shared = c
	} else {
		p.bySes[c.key] = c
	}
	p.wg.Add(1)
	go p.watch(c)
	return true
}

// watch forgets c when its upstream goes away, so that the next call dials
// a new connection.
func (p *Pool) watch(c *Conn) {
	defer p.wg.Done()
	c.cs.Wait()
	p.mu.Lock()
	lost := false
	switch {
	case p.closed:
	case c.key == (Key{}) && p.shared == c:
		p.shared, lost = nil, true
	case c.key != (Key{}) && p.bySes[c.key] == c:
		delete(p.bySes, c.key)
		lost = true
	}
	p.mu.Unlock()
	if lost {
		p.opts.Logger.Warn("upstream connection lost; the next call reconnects", "upstream", p.opts.Name)
	}
}

// DropSession closes the per-session connections of MCP session sid (it
// ended).
func (p *Pool) DropSession(sid string) {
	p.DropIf(func(k Key) bool { return k.Session == sid })
}

// DropIf closes the per-session connections whose key drop reports true
// (the gateway drops those of stateless clients whose credentials expired:
// they have no session whose end would drop them).
func (p *Pool) DropIf(drop func(Key) bool) {
	p.mu.Lock()
	var gone []*Conn
	for k, c := range p.bySes {
		if drop(k) {
			gone = append(gone, c)
			delete(p.bySes, k)
		}
	}
	p.mu.Unlock()
	for _, c := range gone {
		c.cs.Close()
	}
}

// Close closes every connection (stopping stdio processes) and waits for
// their watchers. Later Gets fail with ErrUnavailable. It is idempotent.
func (p *Pool) Close() {
	p.cancel()
	p.mu.Lock()
	p.closed = true
	all := make([]*Conn, 0, len(p.bySes)+1)
	if p.shared != nil {
		all = append(all, p.shared)
		p.shared = nil
	}
	for k, c := range p.bySes {
		all = append(all, c)
		delete(p.bySes, k)
	}
	p.mu.Unlock()
	for _, c := range all {
		c.cs.Close()
	}
	p.wg.Wait()
}

// Conn is one MCP client session to the upstream, with the calls in flight
// on it.
type Conn struct {
	cs    *mcp.ClientSession
	key   Key
	ids   *atomic.Uint64
	nonce string // of the marks on what the upstream sends (tap.go)

	route route // a streamable-HTTP upstream's endpoint and client (Dial)

	mu       sync.Mutex
	inflight map[uint64]*Call
	listed   bool // ToolsListed succeeded once
}

// StatelessHTTP returns how to reach c's upstream when c speaks the
// stateless protocol (2026-07-28 or later, no session) over streamable
// HTTP: a call on it is then one POST standing alone, which the gateway
// may send itself (gateway/fastpath.go). The client sets the upstream's
// configured headers and has no tap: what the upstream sends on such a
// POST reaches only its sender. ok is false for any other connection.
func (c *Conn) StatelessHTTP() (endpoint string, hc *http.Client, version string, ok bool) {
	if c.route.http == nil || c.cs.ID() != "" {
		return "", nil, "", false
	}
	ir := c.cs.InitializeResult()
	if ir == nil || ir.ProtocolVersion < statelessProtocol {
		return "", nil, "", false
	}
	return c.route.endpoint, c.route.http, ir.ProtocolVersion, true
}

// statelessProtocol is the first MCP revision without sessions.
const statelessProtocol = "2026-07-28"

// ToolsListed lists the upstream's tools on c once (every page), so that
// the SDK's client knows their schemas: a 2026-07-28 client sends the
// Mcp-Param-* headers a tool's schema asks for only for tools it has
// listed. The shared connection lists when the gateway syncs; a
// per-session or per-token one lists here, before its first call of such
// a tool.
func (c *Conn) ToolsListed(ctx context.Context) error {
	c.mu.Lock()
	done := c.listed
	c.mu.Unlock()
	if done {
		return nil
	}
	for _, err := range c.cs.Tools(ctx, nil) {
		if err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.listed = true
	c.mu.Unlock()
	return nil
}

// Call is a call forwarded on a Conn and not yet answered: what routing
// needs to send what the upstream sends during it (progress, logs,
// elicitation, sampling) to the caller and nobody else.
type Call struct {
	// Session is the caller's client session.
	Session *mcp.ServerSession
	// Ctx is the client request's context: messages sent with it travel
	// on that request's response stream, which the client is reading.
	Ctx context.Context
	// ProgressToken is the client's, nil if it asked for none.
	ProgressToken any

	// Progress and log notifications received and handled (Settle),
	// guarded by Conn.mu.
	seen, handled int
	wake          chan struct{}
}

// Client returns the MCP client session.
func (c *Conn) Client() *mcp.ClientSession { return c.cs }

// Begin records cl as in flight under a new id, unique in the pool, until
// end is called.
func (c *Conn) Begin(cl *Call) (id uint64, end func()) {
	id = c.ids.Add(1)
	cl.wake = make(chan struct{}, 1)
	c.mu.Lock()
	c.inflight[id] = cl
	c.mu.Unlock()
	return id, func() {
		c.mu.Lock()
		delete(c.inflight, id)
		c.mu.Unlock()
	}
}

// Call returns the call in flight under id, nil if none.
func (c *Conn) Call(id uint64) *Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight[id]
}
