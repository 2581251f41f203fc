package gateway

import (
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// authenticate starts the call of the principal the HTTP layer verified
// (requireToken, http.go) and put in the request. A request without one
// never passed requireToken, which audited it; it is refused here as well,
// so that no later step runs without a principal.
func (s *Server) authenticate(req *mcp.CallToolRequest) (*toolCall, error) {
	start := s.now()
	p := principalOf(req.Extra)
	if p == nil {
		return nil, refusal("unauthenticated")
	}
	return &toolCall{req: req, start: start, principal: p}, nil
}
