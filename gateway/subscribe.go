package gateway

import (
	"context"
	"errors"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Resource subscriptions pass through. A client subscribes to a resource
// URI the token allows (by the resource's exposed name, like
// resources/read); the gateway subscribes on the upstream that registered
// the URI for the first client session and unsubscribes when the last one
// unsubscribes or ends. The upstream's notifications/resources/updated goes
// to the sessions subscribed to that URI (the SDK keeps that list), so a
// token that may not read a resource never hears of its updates. Upstreams
// with per-session credentials are not subscribed through (their shared
// connection serves no client), and a subscription does not survive the
// upstream's reconnection.

// subscriptions are the client sessions subscribed through to one
// upstream's resources.
type subscriptions struct {
	mu    sync.Mutex
	byURI map[string]map[string]bool // URI → client session ids
}

var errSubscribePerSession = errors.New("chatmcp-gateway: subscriptions are not passed through to upstreams with per-session credentials")

func (s *Server) subscribe(ctx context.Context, req *mcp.SubscribeRequest) error {
	p := principalOf(req.Extra)
	u, exposed := s.resourceOwner(req.Params.URI)
	if p == nil || u == nil || !p.Allows(exposed) {
		return errNotPermitted
	}
	if u.pool.PerSession() {
		return errSubscribePerSession
	}
	conn, err := s.connFor(ctx, u, req.Session, p)
	if err != nil {
		return err
	}
	uri, sid := req.Params.URI, sessionID(req.Session)
	u.subs.mu.Lock()
	defer u.subs.mu.Unlock()
	if u.subs.byURI == nil {
		u.subs.byURI = map[string]map[string]bool{}
	}
	set := u.subs.byURI[uri]
	if len(set) == 0 {
		r := &upstreamRequest{u: u, conn: conn, ss: req.Session}
		err := r.do(ctx, func(ctx context.Context, _ any) error {
			return conn.Client().Subscribe(ctx, &mcp.SubscribeParams{URI: uri})
		})
		if err != nil {
			return errors.New(s.redactor.String(err.Error()))
		}
		set = map[string]bool{}
		u.subs.byURI[uri] = set
	}
	set[sid] = true
	return nil
}

func (s *Server) unsubscribe(ctx context.Context, req *mcp.UnsubscribeRequest) error {
	u, _ := s.resourceOwner(req.Params.URI)
	if u == nil {
		return nil
	}
	s.dropSubscription(ctx, u, req.Params.URI, sessionID(req.Session))
	return nil
}

// dropSubscription removes session sid's subscription to uri on u, and the
// gateway's upstream subscription with the last one.
func (s *Server) dropSubscription(ctx context.Context, u *backend, uri, sid string) {
	u.subs.mu.Lock()
	defer u.subs.mu.Unlock()
	set := u.subs.byURI[uri]
	if !set[sid] {
		return
	}
	delete(set, sid)
	if len(set) > 0 {
		return
	}
	delete(u.subs.byURI, uri)
	if conn := u.pool.Shared(); conn != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.cfg.Timeout())
		defer cancel()
		if err := conn.Client().Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: uri}); err != nil {
			s.log.Warn("upstream unsubscribe failed", "upstream", u.cfg.Name, "err", s.redactor.String(err.Error()))
		}
	}
}

// dropSubscriptions removes every subscription of ended session sid on u.
func (s *Server) dropSubscriptions(u *backend, sid string) {
	u.subs.mu.Lock()
	var uris []string
	for uri, set := range u.subs.byURI {
		if set[sid] {
			uris = append(uris, uri)
		}
	}
	u.subs.mu.Unlock()
	for _, uri := range uris {
		s.dropSubscription(s.ctx, u, uri, sid)
	}
}

// resourceUpdated passes an upstream's notifications/resources/updated on
// to the sessions subscribed to the URI, when u owns it.
func (s *Server) resourceUpdated(ctx context.Context, u *backend, p *mcp.ResourceUpdatedNotificationParams) {
	if p == nil {
		return
	}
	if o, _ := s.resourceOwner(p.URI); o != u {
		return
	}
	s.mcp.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: p.URI})
}
