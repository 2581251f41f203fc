package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/catalog"
	"github.com/chatmcp/chatmcp/gateway/upstream"
)

// Resources and prompts pass through under exposed names
// ("<upstream>_<name>", like tools) and are subject to the same token globs.
// Resource URIs are kept as the upstream wrote them (tool results refer to
// them); when two upstreams offer the same URI or URI template, the one
// that registered it first keeps it (at start, the first in name order).
// Their contents are redacted like tool results. They are not pinned and
// not gated: reading is not a write.

type passthrough struct {
	// sync serializes syncResources and syncPrompts of one upstream: each
	// list_changed notification starts one, and two interleaved runs would
	// remove what the other just added.
	sync sync.Mutex
	// The maps are guarded by Server.mu: other upstreams' syncs read them.
	resources map[string]bool // URIs registered by this upstream
	templates map[string]bool
	prompts   map[string]bool
	// names maps the URIs and URI templates in resources and templates to
	// their exposed names; origs maps exposed prompt names to the
	// upstream's (completion.go, subscribe.go).
	names, origs map[string]string
}

func (s *Server) passthroughOf(u *backend) *passthrough {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.pass == nil {
		u.pass = &passthrough{resources: map[string]bool{}, templates: map[string]bool{}, prompts: map[string]bool{},
			names: map[string]string{}, origs: map[string]string{}}
	}
	return u.pass
}

var errNotPermitted = errors.New("chatmcp-gateway: not permitted by your token")

// A resource or prompt the token does not allow is answered exactly as one
// the gateway does not expose (the SDK's own answers), so that a token
// holder cannot map what it may not use (issue 8, finding 8).
func resourceNotPermitted(uri string) error { return mcp.ResourceNotFoundError(uri) }

func promptNotPermitted(name string) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", name)}
}

// keys returns the keys of m; the caller holds s.mu (read or write).
func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (s *Server) syncResources(ctx context.Context, u *backend, c *upstream.Conn) {
	caps := c.Client().InitializeResult().Capabilities
	if caps == nil || caps.Resources == nil {
		return
	}
	pt := s.passthroughOf(u)
	pt.sync.Lock()
	defer pt.sync.Unlock()
	// Withdraw what u registered, then give up its claims: in the other
	// order another upstream could claim and register a URI that this
	// removal then deletes.
	s.mu.RLock()
	uris, tmpls := keys(pt.resources), keys(pt.templates)
	s.mu.RUnlock()
	if len(uris) > 0 {
		s.mcp.RemoveResources(uris...)
	}
	if len(tmpls) > 0 {
		s.mcp.RemoveResourceTemplates(tmpls...)
	}
	s.mu.Lock()
	pt.resources, pt.templates, pt.names = map[string]bool{}, map[string]bool{}, map[string]string{}
	s.mu.Unlock()

	for r, err := range c.Client().Resources(ctx, nil) {
		if err != nil {
			s.log.Warn("listing upstream resources", "upstream", u.cfg.Name, "err", err)
			break
		}
		if !s.claim(u, r.URI, func(p *passthrough) map[string]bool { return p.resources }) {
			continue
		}
		exp := *r
		exp.Name = catalog.Expose(u.cfg.ExposedPrefix(), r.Name)
		s.mu.Lock()
		pt.names[r.URI] = exp.Name
		s.mu.Unlock()
		s.mcp.AddResource(&exp, s.readHandler(u, exp.Name))
	}
	for t, err := range c.Client().ResourceTemplates(ctx, nil) {
		if err != nil {
			s.log.Warn("listing upstream resource templates", "upstream", u.cfg.Name, "err", err)
			break
		}
		templates := func(p *passthrough) map[string]bool { return p.templates }
		if !s.claim(u, t.URITemplate, templates) {
			continue
		}
		exp := *t
		exp.Name = catalog.Expose(u.cfg.ExposedPrefix(), t.Name)
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.log.Warn("upstream resource template rejected", "template", t.URITemplate)
					s.mu.Lock()
					delete(pt.templates, t.URITemplate)
					s.mu.Unlock()
				}
			}()
			s.mcp.AddResourceTemplate(&exp, s.readHandler(u, exp.Name))
			s.mu.Lock()
			pt.names[t.URITemplate] = exp.Name
			s.mu.Unlock()
		}()
	}
}

// claim records key (a resource URI or URI template) as u's in the set
// that set selects, unless another upstream holds it already; the check and
// the record are one step under s.mu, so two upstreams never both claim
// a key.
func (s *Server) claim(u *backend, key string, set func(*passthrough) map[string]bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.upstreams {
		if o != u && o.pass != nil && set(o.pass)[key] {
			return false
		}
	}
	set(u.pass)[key] = true
	return true
}

func (s *Server) readHandler(u *backend, exposed string) mcp.ResourceHandler {
	return func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		p := principalOf(req.Extra)
		if p == nil || !p.Allows(exposed) {
			return nil, resourceNotPermitted(req.Params.URI)
		}
		c, err := s.connFor(ctx, u, req.Session, p)
		if err != nil {
			return nil, err
		}
		var res *mcp.ReadResourceResult
		r := &upstreamRequest{u: u, conn: c, ss: req.Session, progressToken: req.Params.GetProgressToken()}
		err = r.do(ctx, func(ctx context.Context, tok any) error {
			p := &mcp.ReadResourceParams{URI: req.Params.URI}
			if tok != nil {
				p.SetProgressToken(tok)
			}
			res, err = c.Client().ReadResource(ctx, p)
			return err
		})
		if err != nil {
			return nil, errors.New(s.redactor.String(err.Error()))
		}
		var out mcp.ReadResourceResult
		if err := s.redactCopy(res, &out); err != nil {
			return nil, err
		}
		return &out, nil
	}
}

func (s *Server) syncPrompts(ctx context.Context, u *backend, c *upstream.Conn) {
	s.syncPromptsAt(ctx, u, c, false)
}

// syncPromptsAt is syncPrompts; at start, an exposed name that collides
// (names.go) is an error naming both prompts, later it is dropped.
func (s *Server) syncPromptsAt(ctx context.Context, u *backend, c *upstream.Conn, start bool) error {
	caps := c.Client().InitializeResult().Capabilities
	if caps == nil || caps.Prompts == nil {
		return nil
	}
	pt := s.passthroughOf(u)
	pt.sync.Lock()
	defer pt.sync.Unlock()
	s.mu.Lock()
	names := keys(pt.prompts)
	pt.prompts, pt.origs = map[string]bool{}, map[string]string{}
	s.mu.Unlock()
	// Another upstream may claim these names meanwhile (with prefixes that
	// differ, only by a configuration that start-up refuses).
	if len(names) > 0 {
		s.mcp.RemovePrompts(names...)
	}
	var list []*mcp.Prompt
	for pr, err := range c.Client().Prompts(ctx, nil) {
		if err != nil {
			s.log.Warn("listing upstream prompts", "upstream", u.cfg.Name, "err", err)
			break
		}
		list = append(list, pr)
	}
	byName := map[string]*mcp.Prompt{}
	var origs []string
	for _, pr := range list {
		if pr != nil && byName[pr.Name] == nil {
			byName[pr.Name] = pr
			origs = append(origs, pr.Name)
		}
	}
	exposed, dropped := catalog.ResolvePrefix(u.cfg.ExposedPrefix(), origs)
	if err := s.collided(u, "prompt", exposed, dropped, start); err != nil {
		return err
	}
	for _, orig := range origs {
		name, ok := exposed[orig]
		if !ok {
			continue
		}
		exp := *byName[orig]
		exp.Name = name
		s.mu.Lock()
		if o := s.promptOwner(u, name); o != nil {
			s.mu.Unlock()
			if start {
				return collision("prompt", name, o.cfg.Name, "", u.cfg.Name, orig)
			}
			s.log.Warn("upstream prompt dropped: its exposed name is another upstream's", "name", name, "upstream", u.cfg.Name, "owner", o.cfg.Name)
			continue
		}
		pt.prompts[exp.Name] = true
		pt.origs[exp.Name] = orig
		s.mu.Unlock()
		s.mcp.AddPrompt(&exp, func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			p := principalOf(req.Extra)
			if p == nil || !p.Allows(exp.Name) {
				return nil, promptNotPermitted(req.Params.Name)
			}
			c, err := s.connFor(ctx, u, req.Session, p)
			if err != nil {
				return nil, err
			}
			var res *mcp.GetPromptResult
			r := &upstreamRequest{u: u, conn: c, ss: req.Session, progressToken: req.Params.GetProgressToken()}
			err = r.do(ctx, func(ctx context.Context, tok any) error {
				p := &mcp.GetPromptParams{Name: orig, Arguments: req.Params.Arguments}
				if tok != nil {
					p.SetProgressToken(tok)
				}
				res, err = c.Client().GetPrompt(ctx, p)
				return err
			})
			if err != nil {
				return nil, errors.New(s.redactor.String(err.Error()))
			}
			var out mcp.GetPromptResult
			if err := s.redactCopy(res, &out); err != nil {
				return nil, err
			}
			return &out, nil
		})
	}
	return nil
}
