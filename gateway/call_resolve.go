package gateway

import "github.com/chatmcp/chatmcp/gateway/authz"

// resolve establishes what is called: the arguments, decoded strictly
// (args.go), and the tool, which must be one the gateway exposes, that the
// token allows and whose definition is pinned. An unknown tool and one the
// token does not allow get the same answer (unavailable); only the audit
// entry tells them apart. These refusals are audited rate-limited
// (refusal.go).
func (s *Server) resolve(c *toolCall) *refused {
	name := c.req.Params.Name
	args, argsHash, err := decodeArgs(c.req.Params.Arguments)
	c.argsHash = argsHash
	if err != nil {
		return deny(reasonMalformedArgs, refusal("%v", err))
	}
	c.args = args
	if s.cfg.AuditArguments {
		c.auditArgs = s.auditArguments(c)
	}
	t, r := s.lookup(c.principal, name)
	c.tool = t
	return r
}

// lookup finds the tool p calls by name, with the refusal when the call may
// not proceed: the tool (nil when unknown) is returned either way, for the
// audit entry. The middleware's early refusal (refuseCallName) asks it too.
func (s *Server) lookup(p *authz.Principal, name string) (*tool, *refused) {
	s.mu.RLock()
	t := s.tools[name]
	enabled := t != nil && t.enabled
	s.mu.RUnlock()
	switch {
	case t == nil:
		return nil, deny(reasonUnknownTool, unavailable(name))
	case !p.Allows(name):
		return t, deny(reasonNotPermitted, unavailable(name))
	case !enabled:
		return t, deny(reasonDisabled, refusal("tool %q is disabled: its definition changed and awaits approval", name))
	}
	return t, nil
}
