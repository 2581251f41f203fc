package gateway

import (
	"context"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/catalog"
)

// Resources and prompts pass through under exposed names
// ("<upstream>_<name>", like tools) and are subject to the same token globs.
// Resource URIs are kept as the upstream wrote them (tool results refer to
// them); when two upstreams offer the same URI or URI template, the first
// upstream in name order keeps it. Their contents are redacted like tool
// results. They are not pinned and not gated: reading is not a write.

type passthrough struct {
	resources map[string]bool // URIs registered by this upstream
	templates map[string]bool
	prompts   map[string]bool
}

func (s *Server) passthroughOf(u *backend) *passthrough {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.pass == nil {
		u.pass = &passthrough{resources: map[string]bool{}, templates: map[string]bool{}, prompts: map[string]bool{}}
	}
	return u.pass
}

var errNotPermitted = errors.New("chatmcp-gateway: not permitted by your token")

func (s *Server) syncResources(ctx context.Context, u *backend, c *conn) {
	caps := c.cs.InitializeResult().Capabilities
	if caps == nil || caps.Resources == nil {
		return
	}
	pt := s.passthroughOf(u)
	var uris []string
	for uri := range pt.resources {
		uris = append(uris, uri)
	}
	if len(uris) > 0 {
		s.mcp.RemoveResources(uris...)
	}
	var tmpls []string
	for t := range pt.templates {
		tmpls = append(tmpls, t)
	}
	if len(tmpls) > 0 {
		s.mcp.RemoveResourceTemplates(tmpls...)
	}
	s.mu.Lock()
	pt.resources, pt.templates = map[string]bool{}, map[string]bool{}
	s.mu.Unlock()

	for r, err := range c.cs.Resources(ctx, nil) {
		if err != nil {
			s.log.Warn("listing upstream resources", "upstream", u.cfg.Name, "err", err)
			break
		}
		if s.uriTaken(r.URI, u) {
			continue
		}
		exp := *r
		exp.Name = catalog.ExposedName(u.cfg.Name, r.Name)
		pt.resources[r.URI] = true
		s.mcp.AddResource(&exp, s.readHandler(u, exp.Name))
	}
	for t, err := range c.cs.ResourceTemplates(ctx, nil) {
		if err != nil {
			s.log.Warn("listing upstream resource templates", "upstream", u.cfg.Name, "err", err)
			break
		}
		if s.templateTaken(t.URITemplate, u) {
			continue
		}
		exp := *t
		exp.Name = catalog.ExposedName(u.cfg.Name, t.Name)
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.log.Warn("upstream resource template rejected", "template", t.URITemplate)
				}
			}()
			s.mcp.AddResourceTemplate(&exp, s.readHandler(u, exp.Name))
			pt.templates[t.URITemplate] = true
		}()
	}
}

func (s *Server) uriTaken(uri string, self *backend) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, o := range s.upstreams {
		if o != self && o.pass != nil && o.pass.resources[uri] {
			return true
		}
	}
	return false
}

func (s *Server) templateTaken(t string, self *backend) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, o := range s.upstreams {
		if o != self && o.pass != nil && o.pass.templates[t] {
			return true
		}
	}
	return false
}

func (s *Server) readHandler(u *backend, exposed string) mcp.ResourceHandler {
	return func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		p := principalOf(req.Extra)
		if p == nil || !p.Allows(exposed) {
			return nil, errNotPermitted
		}
		c, err := s.connFor(ctx, u, req.Session, p)
		if err != nil {
			return nil, err
		}
		res, err := c.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: req.Params.URI})
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

func (s *Server) syncPrompts(ctx context.Context, u *backend, c *conn) {
	caps := c.cs.InitializeResult().Capabilities
	if caps == nil || caps.Prompts == nil {
		return
	}
	pt := s.passthroughOf(u)
	var names []string
	for n := range pt.prompts {
		names = append(names, n)
	}
	if len(names) > 0 {
		s.mcp.RemovePrompts(names...)
	}
	s.mu.Lock()
	pt.prompts = map[string]bool{}
	s.mu.Unlock()
	for pr, err := range c.cs.Prompts(ctx, nil) {
		if err != nil {
			s.log.Warn("listing upstream prompts", "upstream", u.cfg.Name, "err", err)
			break
		}
		exp := *pr
		exp.Name = catalog.ExposedName(u.cfg.Name, pr.Name)
		orig := pr.Name
		pt.prompts[exp.Name] = true
		s.mcp.AddPrompt(&exp, func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			p := principalOf(req.Extra)
			if p == nil || !p.Allows(exp.Name) {
				return nil, errNotPermitted
			}
			c, err := s.connFor(ctx, u, req.Session, p)
			if err != nil {
				return nil, err
			}
			res, err := c.cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: orig, Arguments: req.Params.Arguments})
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
}
