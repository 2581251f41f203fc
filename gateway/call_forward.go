package gateway

import (
	"context"
	"errors"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// forward sends the call to the upstream on the connection its pool gives
// for the caller (backend.go, gateway/upstream), and returns the
// upstream's answer unredacted. The arguments sent are the canonical
// encoding of the value that was authorized, never the client's bytes
// (args.go). While the call is in flight, what the upstream sends about it
// is routed to the caller (routing.go).
func (s *Server) forward(ctx context.Context, c *toolCall) (*mcp.CallToolResult, error) {
	canon, err := canonicalArgs(c.args)
	if err != nil {
		return nil, err
	}
	conn, err := s.connFor(ctx, c.tool.upstream, c.req.Session, c.principal)
	if err != nil {
		return nil, err
	}
	// A reconnection re-checks the pins; a definition that changed
	// meanwhile is not called.
	s.mu.RLock()
	cur := s.tools[c.tool.exposed]
	enabled := cur != nil && cur.enabled
	s.mu.RUnlock()
	if !enabled {
		return nil, errors.New("the tool's definition changed; call not forwarded")
	}
	if c.tool.paramHeaders && conn != c.tool.upstream.pool.Shared() {
		// Its Mcp-Param-* headers go only with a tool the connection listed.
		if err := conn.ToolsListed(ctx); err != nil {
			return nil, err
		}
	}
	if round := fastRound(ctx); round != nil {
		if endpoint, hc, version, ok := conn.StatelessHTTP(); ok {
			// One POST, as the SDK's client would send it (call_forward_post.go).
			r := &upstreamRequest{u: c.tool.upstream, conn: conn}
			var res *mcp.CallToolResult
			err = r.do(ctx, func(ctx context.Context, _ any) error {
				res, err = s.postCall(ctx, hc, endpoint, version, c, canon, round)
				return err
			})
			return res, err
		}
	}
	// Ask the upstream for every log level (the 2026-07-28 protocol takes
	// it per request); the client's own level filters what it receives.
	params := &mcp.CallToolParams{Name: c.tool.def.Name, Arguments: canon,
		Meta: mcp.Meta{mcp.MetaKeyLogLevel: "debug"}}
	r := &upstreamRequest{u: c.tool.upstream, conn: conn, ss: c.req.Session, progressToken: c.req.Params.GetProgressToken()}
	var res *mcp.CallToolResult
	err = r.do(ctx, func(ctx context.Context, tok any) error {
		if tok != nil {
			params.SetProgressToken(tok)
		}
		res, err = conn.Client().CallTool(ctx, params)
		return err
	})
	if err != nil && strings.Contains(err.Error(), errTerminated) && c.req.Extra != nil && c.req.Extra.CloseSSEStream != nil {
		// The upstream closed the call's stream without an answer and
		// cannot resume it: the caller sees the same.
		c.req.Extra.CloseSSEStream(mcp.CloseSSEStreamArgs{})
	}
	return res, err
}

// errTerminated is how the SDK's client reports a response stream that
// ended without the response and without an event id to resume it from.
const errTerminated = "request terminated without response"
