package gateway

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
	s.mu.RLock()
	t := s.tools[name]
	enabled := t != nil && t.enabled
	s.mu.RUnlock()
	if t == nil {
		return deny(reasonUnknownTool, unavailable(name))
	}
	c.tool = t
	switch {
	case !c.principal.Allows(name):
		return deny(reasonNotPermitted, unavailable(name))
	case !enabled:
		return deny(reasonDisabled, refusal("tool %q is disabled: its definition changed and awaits approval", name))
	}
	return nil
}
