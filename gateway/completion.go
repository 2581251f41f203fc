package gateway

import (
	"context"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// completion/complete passes through to the upstream that owns what it
// completes: the prompt (ref/prompt, by exposed name, renamed to the
// upstream's) or the resource or URI template (ref/resource, by URI). The
// token must allow the prompt's or resource's exposed name, as for
// prompts/get and resources/read; the answer is redacted.

// errUnknownRef answers a completion of something the gateway does not
// expose or the token does not allow: one answer for both.
var errUnknownRef = errors.New("chatmcp-gateway: unknown prompt or resource (or not permitted by your token)")

func (s *Server) complete(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	p := principalOf(req.Extra)
	if p == nil || req.Params == nil || req.Params.Ref == nil {
		return nil, errUnknownRef
	}
	params := *req.Params
	ref := *params.Ref
	params.Ref = &ref
	var u *backend
	var exposed string
	switch ref.Type {
	case "ref/prompt":
		u, exposed, ref.Name = s.promptOwnerOf(ref.Name)
	case "ref/resource":
		u, exposed = s.resourceOwner(ref.URI)
	}
	if u == nil || !p.Allows(exposed) {
		return nil, errUnknownRef
	}
	conn, err := s.connFor(ctx, u, req.Session, p)
	if err != nil {
		return nil, err
	}
	var res *mcp.CompleteResult
	r := &upstreamRequest{u: u, conn: conn, ss: req.Session}
	err = r.do(ctx, func(ctx context.Context, _ any) error {
		res, err = conn.Client().Complete(ctx, &params)
		return err
	})
	if err != nil {
		return nil, errors.New(s.redactor.String(err.Error()))
	}
	var out mcp.CompleteResult
	if err := s.redactCopy(res, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// promptOwnerOf returns the upstream exposing prompt name, and the
// prompt's upstream name.
func (s *Server) promptOwnerOf(name string) (u *backend, exposed, orig string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, o := range s.upstreams {
		if o.pass != nil && o.pass.prompts[name] {
			return o, name, o.pass.origs[name]
		}
	}
	return nil, "", ""
}

// resourceOwner returns the upstream that registered uri (a resource URI or
// a URI template) and its exposed name.
func (s *Server) resourceOwner(uri string) (*backend, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, o := range s.upstreams {
		if o.pass != nil && (o.pass.resources[uri] || o.pass.templates[uri]) {
			return o, o.pass.names[uri]
		}
	}
	return nil, ""
}
