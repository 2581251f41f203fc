package gateway

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/upstream"
)

// What an upstream sends on a connection is routed here: list changes
// re-sync the upstream's features (sync.go, passthrough.go); progress, log
// messages, elicitation and sampling requests go, redacted, to the caller
// of the call in flight that they belong to, and to nobody else.

// clientOptions returns the handlers of c, a new connection to u.
func (s *Server) clientOptions(u *backend, c *upstream.Conn) *mcp.ClientOptions {
	return &mcp.ClientOptions{
		Logger: s.log,
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			if c == u.pool.Shared() {
				go func() {
					ctx, cancel := context.WithTimeout(s.ctx, u.cfg.Timeout())
					defer cancel()
					s.syncTools(ctx, u, c)
				}()
			}
		},
		ResourceListChangedHandler: func(context.Context, *mcp.ResourceListChangedRequest) {
			if c == u.pool.Shared() {
				go func() {
					ctx, cancel := context.WithTimeout(s.ctx, u.cfg.Timeout())
					defer cancel()
					s.syncResources(ctx, u, c)
				}()
			}
		},
		PromptListChangedHandler: func(context.Context, *mcp.PromptListChangedRequest) {
			if c == u.pool.Shared() {
				go func() {
					ctx, cancel := context.WithTimeout(s.ctx, u.cfg.Timeout())
					defer cancel()
					s.syncPrompts(ctx, u, c)
				}()
			}
		},
		ResourceUpdatedHandler: func(ctx context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			if c == u.pool.Shared() {
				s.resourceUpdated(ctx, u, req.Params)
			}
		},
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			s.forwardProgress(c, req.Params)
		},
		LoggingMessageHandler: func(ctx context.Context, req *mcp.LoggingMessageRequest) {
			s.forwardLog(u, c, req.Params)
		},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return s.forwardElicit(ctx, c, req.Params)
		},
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return s.forwardSampling(ctx, c, req.Params)
		},
	}
}

// receiving takes the upstream's elicitation requests and roots requests
// on connection c before the SDK's client would handle them: an
// elicitation's schema is the client's to judge (the SDK's check knows an
// older revision of what forms may hold), and roots are the caller's.
func (s *Server) receiving(c *upstream.Conn) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			switch r := req.(type) {
			case *mcp.ElicitRequest:
				return s.forwardElicit(ctx, c, r.Params)
			case *mcp.ListRootsRequest:
				return s.forwardRoots(ctx, c, r.Params)
			}
			return next(ctx, method, req)
		}
	}
}

// forwardRoots asks the caller of the call a roots/list request belongs to
// for its roots, if that client declared roots; otherwise the answer is an
// empty list, as from a client that has none.
func (s *Server) forwardRoots(ctx context.Context, c *upstream.Conn, in *mcp.ListRootsParams) (*mcp.ListRootsResult, error) {
	var meta mcp.Meta
	if in != nil {
		meta = in.Meta
	}
	cl, err := callerOf(ctx, c, meta)
	if err != nil {
		return &mcp.ListRootsResult{Roots: []*mcp.Root{}}, nil
	}
	if caps := clientCapabilities(cl.Session); caps == nil || caps.RootsV2 == nil {
		return &mcp.ListRootsResult{Roots: []*mcp.Root{}}, nil
	}
	return cl.Session.ListRoots(withDeadlineOf(cl.Ctx, ctx), &mcp.ListRootsParams{})
}

// forwardProgress sends a progress notification of a call in flight to its
// caller, under the caller's own progress token.
func (s *Server) forwardProgress(c *upstream.Conn, p *mcp.ProgressNotificationParams) {
	cl, id := c.Tagged(p.Meta)
	defer c.Handled(id)
	if cl == nil || cl.ProgressToken == nil || cl.Session == nil {
		return
	}
	out := *p
	out.Meta = upstream.WithoutTag(p.Meta)
	out.ProgressToken = cl.ProgressToken
	out.Message = s.redactor.String(out.Message)
	cl.Session.NotifyProgress(cl.Ctx, &out)
}

// forwardLog sends an upstream log message, redacted, to the caller of the
// call it belongs to; one that belongs to no call is dropped rather than
// sent to other principals.
func (s *Server) forwardLog(u *backend, c *upstream.Conn, p *mcp.LoggingMessageParams) {
	cl, id := c.Tagged(p.Meta)
	defer c.Handled(id)
	if cl == nil || cl.Session == nil {
		return
	}
	var out mcp.LoggingMessageParams
	if err := s.redactCopy(p, &out); err != nil {
		return
	}
	upstream.StripTag(out.Meta)
	if out.Logger == "" {
		out.Logger = u.cfg.Name
	} else {
		out.Logger = u.cfg.Name + "/" + out.Logger
	}
	cl.Session.Log(cl.Ctx, &out)
}

// errUnattributed refuses an upstream request that belongs to no call in
// progress (upstream/tap.go): there is nobody to ask.
var errUnattributed = errors.New("chatmcp-gateway: this request belongs to no call in progress; refused")

// errNoSession refuses an upstream's request for input during the call of
// a 2026-07-28 client: the gateway has no session to ask it on, and does
// not yet relay the upstream's input_required round to it (docs/gateway.md,
// "Known limits").
var errNoSession = errors.New("chatmcp-gateway: the upstream asked for the user's input, which this gateway cannot relay to a 2026-07-28 (stateless) client; refused")

// callerOf returns the call in flight that an upstream's request belongs
// to: by the context of the calling request, for input requests that
// arrived in a result (an input_required round the SDK's client fulfils
// on that context), else by the tap's mark on a request the upstream sent
// on the call's stream (upstream/tap.go). A call whose client has no
// session to ask is refused with errNoSession.
func callerOf(ctx context.Context, c *upstream.Conn, meta mcp.Meta) (*upstream.Call, error) {
	cl := c.CallOf(ctx)
	if cl == nil {
		cl, _ = c.Tagged(meta)
	}
	switch {
	case cl == nil:
		return nil, errUnattributed
	case cl.Session == nil || statelessSession(cl.Session):
		return nil, errNoSession
	}
	return cl, nil
}

// forwardElicit sends the upstream's elicitation request, redacted, to the
// caller of the call it belongs to, if that client declared elicitation.
func (s *Server) forwardElicit(ctx context.Context, c *upstream.Conn, in *mcp.ElicitParams) (*mcp.ElicitResult, error) {
	cl, err := callerOf(ctx, c, in.Meta)
	if err != nil {
		return nil, err
	}
	if caps := clientCapabilities(cl.Session); caps == nil || caps.Elicitation == nil {
		return nil, errors.New("the client did not declare elicitation")
	}
	var p mcp.ElicitParams
	if err := s.redactCopy(in, &p); err != nil {
		return nil, err
	}
	upstream.StripTag(p.Meta)
	return cl.Session.Elicit(withDeadlineOf(cl.Ctx, ctx), &p)
}

// forwardSampling is forwardElicit for sampling requests.
func (s *Server) forwardSampling(ctx context.Context, c *upstream.Conn, in *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
	cl, err := callerOf(ctx, c, in.Meta)
	if err != nil {
		return nil, err
	}
	if caps := clientCapabilities(cl.Session); caps == nil || caps.Sampling == nil {
		return nil, errors.New("the client did not declare sampling")
	}
	var p mcp.CreateMessageParams
	if err := s.redactCopy(in, &p); err != nil {
		return nil, err
	}
	upstream.StripTag(p.Meta)
	return cl.Session.CreateMessage(withDeadlineOf(cl.Ctx, ctx), &p)
}

// clientCapabilities returns what ss declared at initialization, nil if
// nothing.
func clientCapabilities(ss *mcp.ServerSession) *mcp.ClientCapabilities {
	if ss == nil || ss.InitializeParams() == nil {
		return nil
	}
	return ss.InitializeParams().Capabilities
}

// redactCopy copies in to out through JSON with every secret redacted.
func (s *Server) redactCopy(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(s.redactor.JSON(b), out)
}

// withDeadlineOf returns parent (the client request's context, for
// routing) cancelled also when other (the upstream's request) ends.
func withDeadlineOf(parent, other context.Context) context.Context {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(other, cancel)
	context.AfterFunc(ctx, func() { stop() })
	return ctx
}
