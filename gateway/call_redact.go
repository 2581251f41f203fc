package gateway

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/redact"
)

// redact scrubs what goes back to the caller: the result (content and
// structured content) or the error's text, of every layer-1 secret and the
// session's layer-2 credentials. A result that cannot be redacted becomes
// an error.
func (s *Server) redact(c *toolCall, res *mcp.CallToolResult, err error) (*mcp.CallToolResult, error) {
	r := s.redactorFor(c)
	if err != nil {
		return nil, errors.New(r.String(err.Error()))
	}
	return redactResult(r, res)
}

// redactorFor returns the redactor for what concerns c, on its way to the
// caller, an approver or the audit log: layer-1 secrets plus the
// session's own layer-2 credentials.
func (s *Server) redactorFor(c *toolCall) *redact.Redactor {
	creds := s.creds.Get(c.principal.ChainID, sessionID(c.req.Session))
	if len(creds) == 0 {
		return s.redactor
	}
	vals := make([][]byte, 0, len(creds))
	for _, v := range creds {
		vals = append(vals, v)
	}
	return s.redactor.With(vals...)
}

// redactResult scrubs a tool result. The fast path (nothing to redact)
// costs one encoding of the result.
func redactResult(r *redact.Redactor, res *mcp.CallToolResult) (*mcp.CallToolResult, error) {
	if r.Empty() {
		return res, nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	out := r.JSON(b)
	if &out[0] == &b[0] {
		return res, nil
	}
	var clean mcp.CallToolResult
	if err := json.Unmarshal(out, &clean); err != nil {
		return nil, fmt.Errorf("decoding redacted result: %w", err)
	}
	return &clean, nil
}
