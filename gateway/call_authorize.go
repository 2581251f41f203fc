package gateway

import "github.com/chatmcp/chatmcp/gateway/authz"

// Audit reasons of authorize's refusals; a refusal by policy carries the
// policy's own reason (authz.Policy.Allow).
const reasonArgsNotPermitted = "arguments not permitted by token"

// authorize checks the call's arguments against the token's constraints
// and asks the Cedar policy (Action::"call"); without a policy the token
// alone decides. Its refusals are always audited.
func (s *Server) authorize(c *toolCall) *refused {
	name := c.tool.exposed
	if !c.principal.AllowsCall(name, c.args) {
		return deny(reasonArgsNotPermitted, refusal("the arguments of this call to %q are not permitted by your token's constraints", name))
	}
	c.policyCall = &authz.Call{Principal: c.principal.Name(), Tool: name, Upstream: c.tool.upstream.cfg.Name,
		ReadOnly: c.tool.readOnly, Arguments: c.args}
	if ok, why := s.policy.Allow(authz.ActionCall, c.policyCall); !ok {
		return deny(why, refusal("call to %q refused by policy", name))
	}
	return nil
}
