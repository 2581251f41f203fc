package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/authz"
	"github.com/chatmcp/chatmcp/gateway/upstream"
)

// backend is one configured upstream server: its connections (a pool in
// package upstream) and the resources and prompts it passes through.
type backend struct {
	cfg  *Upstream
	pool *upstream.Pool
	pass *passthrough  // guarded by Server.mu
	subs subscriptions // subscribe.go
}

// newBackend returns cfg's backend, not yet connected. An upstream with
// {credential: …} values gets one connection per (principal, session),
// dialled with that session's layer-2 credentials; the shared connection,
// made with those values left out, only lists its features.
func (s *Server) newBackend(cfg *Upstream) *backend {
	u := &backend{cfg: cfg}
	u.pool = upstream.NewPool(&upstream.PoolOptions{
		Name:       cfg.Name,
		PerSession: len(cfg.Credentials()) > 0,
		Spec: func(k upstream.Key) (*upstream.Spec, error) {
			if k == (upstream.Key{}) {
				return s.spec(cfg, nil, true)
			}
			return s.spec(cfg, s.creds.Get(k.Principal, k.Session), false)
		},
		Client:    func(c *upstream.Conn) *mcp.ClientOptions { return s.clientOptions(u, c) },
		Receiving: func(c *upstream.Conn) mcp.Middleware { return s.receiving(c) },
		// A redialled connection re-checks the pins before any call uses it.
		Ready:       func(ctx context.Context, c *upstream.Conn) error { return s.syncTools(ctx, u, c) },
		Dial:        &upstream.Options{HTTPClient: s.opts.UpstreamHTTPClient, Getenv: s.opts.Getenv},
		Logger:      s.log,
		DialTimeout: cfg.Timeout(),
	})
	return u
}

func (u *backend) close() { u.pool.Close() }

// spec resolves the upstream's configured values; blankCreds leaves the
// {credential: …} ones out.
func (s *Server) spec(u *Upstream, creds map[string][]byte, blankCreds bool) (*upstream.Spec, error) {
	sp := &upstream.Spec{Name: u.Name, Command: u.Command, Args: u.Args, URL: u.URL,
		Env: map[string]string{}, Headers: map[string]string{}, ProtocolVersion: u.ProtocolVersion}
	resolve := func(v Value) (string, bool, error) {
		if v.Credential != "" && blankCreds {
			return "", false, nil
		}
		r, err := v.Resolve(s.secrets, creds)
		return r, true, err
	}
	for k, v := range u.Env {
		r, ok, err := resolve(v)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", k, err)
		}
		if ok {
			sp.Env[k] = r
		}
	}
	for k, v := range u.Headers {
		r, ok, err := resolve(v)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", k, err)
		}
		if ok {
			sp.Headers[k] = r
		}
	}
	return sp, nil
}

// connFor returns the connection a request of p in session ss uses: the
// shared one, or for per-session upstreams the one bound to (p's principal
// id, ss). The principal id is the token chain's, so a token attenuated
// from p's never shares it.
func (s *Server) connFor(ctx context.Context, u *backend, ss *mcp.ServerSession, p *authz.Principal) (*upstream.Conn, error) {
	return u.pool.Get(ctx, upstream.Key{Principal: p.ChainID, Session: sessionID(ss)})
}

// dropSession closes per-session upstream connections and forgets layer-2
// credentials of a finished MCP session.
func (s *Server) dropSession(sid string) {
	s.creds.DropSession(sid)
	s.mu.Lock()
	delete(s.sessions, sid)
	ups := make([]*backend, 0, len(s.upstreams))
	for _, u := range s.upstreams {
		ups = append(ups, u)
	}
	s.mu.Unlock()
	for _, u := range ups {
		s.dropSubscriptions(u, sid)
		u.pool.DropSession(sid)
	}
}

func sessionID(ss *mcp.ServerSession) string {
	if ss == nil {
		return ""
	}
	return ss.ID()
}

// upstreamRequest is one request forwarded to an upstream on conn for the
// client session ss (nil for none), whose client asked for progress under
// progressToken (nil for none).
type upstreamRequest struct {
	u             *backend
	conn          *upstream.Conn
	ss            *mcp.ServerSession
	progressToken any
}

// do runs send, the upstream request, as a call in flight on the
// connection: what the upstream sends meanwhile reaches the caller
// (routing.go), the request has the upstream's deadline (call_timeout; at
// it, or when ctx ends, the upstream gets notifications/cancelled), and it
// returns only once the progress and log notifications that came before the
// result were handled. upstreamToken is the progress token to send upstream,
// nil when the client asked for none.
func (r *upstreamRequest) do(ctx context.Context, send func(ctx context.Context, upstreamToken any) error) error {
	cl := &upstream.Call{Session: r.ss, Ctx: ctx, ProgressToken: r.progressToken}
	id, end := r.conn.Begin(cl)
	defer end()
	var tok any
	if r.progressToken != nil {
		tok = upstream.ProgressToken(id)
	}
	uctx, cancel := context.WithTimeout(upstream.WithCall(ctx, id), r.u.cfg.Timeout())
	defer cancel()
	err := send(uctx, tok)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("no answer within call_timeout (%s); the upstream was told to cancel", r.u.cfg.Timeout())
	}
	r.conn.Settle(id, flushTimeout)
	return err
}
