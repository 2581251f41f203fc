package gateway

import (
	"fmt"

	"github.com/chatmcp/chatmcp/gateway/catalog"
)

// Exposed names. Each upstream's tools, prompts and resources are exposed
// under its prefix (Upstream.ExposedPrefix: "<upstream>_" unless its config
// block sets prefix:, which may be empty). Two tools or two prompts exposed
// under one name would let a call meant for one reach the other, so at
// start any collision, within one upstream or across two, is an error
// naming both; later (a list_changed re-list) the newcomer is dropped with
// a warning and the name keeps its owner.

// collided reports the names catalog.ResolvePrefix dropped from u's list
// of kind ("tool", "prompt"): exposed maps the kept originals to their
// exposed names.
func (s *Server) collided(u *backend, kind string, exposed map[string]string, dropped []string, start bool) error {
	for _, d := range dropped {
		name := catalog.Expose(u.cfg.ExposedPrefix(), d)
		other := ""
		for o, e := range exposed {
			if e == name {
				other = o
			}
		}
		if start {
			return fmt.Errorf("%s %q and %s %q of upstream %s are both exposed as %q: set another prefix or rename one",
				kind, other, kind, d, u.cfg.Name, name)
		}
		s.log.Warn("upstream "+kind+" dropped: its exposed name collides", "upstream", u.cfg.Name, kind, d, "with", other, "name", name)
	}
	return nil
}

// dropTakenTools removes from next the tools whose exposed name another
// upstream holds; at start it is an error naming both. The caller holds
// s.mu.
func (s *Server) dropTakenTools(u *backend, next map[string]*tool, start bool) error {
	for name, t := range next {
		old := s.tools[name]
		if old == nil || old.upstream == u {
			continue
		}
		if start {
			return collision("tool", name, old.upstream.cfg.Name, old.def.Name, u.cfg.Name, t.def.Name)
		}
		s.log.Warn("upstream tool dropped: its exposed name is another upstream's", "name", name,
			"upstream", u.cfg.Name, "tool", t.def.Name, "owner", old.upstream.cfg.Name)
		delete(next, name)
	}
	return nil
}

// promptOwner returns the upstream other than u that exposes a prompt
// under name, nil if none. The caller holds s.mu.
func (s *Server) promptOwner(u *backend, name string) *backend {
	for _, o := range s.upstreams {
		if o != u && o.pass != nil && o.pass.prompts[name] {
			return o
		}
	}
	return nil
}

// collision names both sides of a collision across upstreams; orig1 may
// be unknown ("").
func collision(kind, name, up1, orig1, up2, orig2 string) error {
	first := fmt.Sprintf("upstream %s", up1)
	if orig1 != "" {
		first += fmt.Sprintf(" %s %q", kind, orig1)
	}
	return fmt.Errorf("exposed %s name %q collides: %s and upstream %s %s %q; set prefix: on one of them",
		kind, name, first, up2, kind, orig2)
}
