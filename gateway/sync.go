package gateway

import (
	"context"
	"fmt"
	"sort"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/catalog"
	"github.com/chatmcp/chatmcp/gateway/upstream"
)

// tool is one upstream tool as the gateway knows it.
type tool struct {
	exposed  string
	upstream *backend
	def      *mcp.Tool // as the upstream sent it
	readOnly bool
	enabled  bool // pinned definition; false while a change awaits approval

	paramHeaders bool // its schema declares Mcp-Param-* headers (fastpath.go)
}

// startUpstream connects to cfg's upstream (for per-session upstreams a
// discovery connection with blank credentials) and registers its features.
func (s *Server) startUpstream(ctx context.Context, cfg *Upstream) error {
	u := s.newBackend(cfg)
	c, err := u.pool.Connect(ctx)
	if err != nil {
		u.close()
		return err
	}
	s.mu.Lock()
	s.upstreams[cfg.Name] = u
	s.mu.Unlock()
	// Listing has the upstream's deadline too: a hung upstream stops the
	// start instead of holding it.
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout())
	defer cancel()
	if err := s.syncToolsAt(ctx, u, c, true); err != nil {
		return fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	s.syncResources(ctx, u, c)
	if err := s.syncPromptsAt(ctx, u, c, true); err != nil {
		return fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	return nil
}

// syncTools lists u's tools, checks each against its pin and updates what
// the gateway exposes: new and unchanged definitions are exposed, changed
// ones are withdrawn until approved, vanished ones are removed.
func (s *Server) syncTools(ctx context.Context, u *backend, c *upstream.Conn) error {
	return s.syncToolsAt(ctx, u, c, false)
}

// syncToolsAt is syncTools; at start, an exposed name that collides (names.go)
// is an error naming both tools, later it is dropped with a warning.
func (s *Server) syncToolsAt(ctx context.Context, u *backend, c *upstream.Conn, start bool) error {
	list, err := upstream.ListTools(ctx, c.Client())
	if err != nil {
		s.log.Error("listing upstream tools", "upstream", u.cfg.Name, "err", err)
		return fmt.Errorf("listing tools: %w", err)
	}
	s.withdrawChanged(u, list)
	next, err := s.pinTools(u, list, start)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if err := s.dropTakenTools(u, next, start); err != nil {
		s.mu.Unlock()
		return err
	}
	var remove []string
	for name, t := range s.tools {
		if t.upstream != u {
			continue
		}
		if n, ok := next[name]; !ok || !n.enabled {
			remove = append(remove, name)
			delete(s.tools, name)
		}
	}
	var add []*tool
	for name, t := range next {
		old := s.tools[name]
		s.tools[name] = t
		if t.enabled && (old == nil || !old.enabled || old.def != t.def) {
			add = append(add, t)
		}
	}
	s.mu.Unlock()
	if len(remove) > 0 {
		s.mcp.RemoveTools(remove...)
	}
	sort.Slice(add, func(i, j int) bool { return add[i].exposed < add[j].exposed })
	for _, t := range add {
		s.addTool(t)
	}
	return nil
}

// withdrawChanged stops exposing u's tools whose definition in list differs
// from the one exposed, before pinTools records the change as pending: once
// an operator can see a change pending, no listing or call sees the tool.
func (s *Server) withdrawChanged(u *backend, list []*mcp.Tool) {
	fresh := map[string]*mcp.Tool{}
	for _, t := range list {
		if t == nil {
			continue
		}
		if _, dup := fresh[t.Name]; !dup {
			fresh[t.Name] = t
		}
	}
	var remove []string
	s.mu.Lock()
	for name, t := range s.tools {
		if t.upstream != u || !t.enabled {
			continue
		}
		n, ok := fresh[t.def.Name]
		if !ok {
			continue // vanished: the sync removes it
		}
		was, err1 := catalog.Hash(t.def)
		now, err2 := catalog.Hash(n)
		if err1 != nil || err2 != nil || was != now {
			remove = append(remove, name)
			delete(s.tools, name)
		}
	}
	s.mu.Unlock()
	if len(remove) > 0 {
		s.mcp.RemoveTools(remove...)
	}
}

// pinTools names u's tools (catalog.Resolve: first of a duplicated name,
// collisions dropped) and checks each definition against its pin.
func (s *Server) pinTools(u *backend, list []*mcp.Tool, start bool) (map[string]*tool, error) {
	byName := map[string]*mcp.Tool{}
	names := make([]string, 0, len(list))
	for _, t := range list {
		if t == nil {
			continue
		}
		if _, dup := byName[t.Name]; dup {
			continue
		}
		byName[t.Name] = t
		names = append(names, t.Name)
	}
	exposed, dropped := catalog.ResolvePrefix(u.cfg.ExposedPrefix(), names)
	if err := s.collided(u, "tool", exposed, dropped, start); err != nil {
		return nil, err
	}
	next := map[string]*tool{}
	for orig, name := range exposed {
		def := byName[orig]
		st, err := s.pins.Check(name, def)
		if err != nil {
			s.log.Error("pinning tool", "tool", name, "err", err)
			st = catalog.Changed
		}
		ro := def.Annotations != nil && def.Annotations.ReadOnlyHint
		next[name] = &tool{exposed: name, upstream: u, def: def, readOnly: ro, enabled: st == catalog.Pinned,
			paramHeaders: hasParamHeaders(def)}
		if st == catalog.Changed {
			s.log.Warn("tool definition changed: disabled until approved", "tool", name)
		}
	}
	return next, nil
}

// addTool registers t with the MCP server; its calls go through callTool
// (pipeline.go). The SDK panics on schemas it rejects; such a tool is
// withdrawn and logged instead.
func (s *Server) addTool(t *tool) {
	def := *t.def
	def.Name = t.exposed
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("upstream tool rejected", "tool", t.exposed, "err", fmt.Sprint(r))
			s.mu.Lock()
			t.enabled = false
			s.mu.Unlock()
		}
	}()
	s.mcp.AddTool(&def, s.callTool)
}

// ApproveTool pins the pending definition of name, which must have the
// hex SHA-256 sha256 (catalog.Pins.Approve), and re-exposes it.
func (s *Server) ApproveTool(ctx context.Context, name, sha256 string) error {
	if err := s.pins.Approve(name, sha256); err != nil {
		return err
	}
	s.mu.RLock()
	t := s.tools[name]
	s.mu.RUnlock()
	if t == nil {
		return nil // the upstream no longer offers it; the pin waits for it
	}
	c := t.upstream.pool.Shared()
	if c == nil {
		return nil
	}
	return s.syncTools(ctx, t.upstream, c)
}
