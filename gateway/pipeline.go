package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/authz"
	"github.com/chatmcp/chatmcp/x402"
)

// The call path. Every tools/call goes through these steps, in this order,
// each in its own file with its own tests:
//
//	authenticate   call_authenticate.go  the principal the HTTP layer verified
//	resolve        call_resolve.go       the arguments (decoded strictly, args.go) and the tool:
//	                                     catalogue, token, pin
//	authorize      call_authorize.go     the token's argument constraints, the Cedar policy
//	confirm        call_confirm.go       a person, for a tool that is not read-only
//	               call_confirm_roundtrip.go  (2026-07-28 clients: input_required rounds)
//	pay            call_pay.go           a paid tool's payment (x402), settled exactly once
//	auditDecision  call_audit.go         the decision entry: no entry, no call; its
//	                                     fsync overlaps forward, no result before it
//	forward        call_forward.go       the canonical arguments, on a connection of
//	                                     the upstream's pool (gateway/upstream)
//	redact         call_redact.go        secrets out of the result or the error
//	auditOutcome   call_audit.go         the result entry, off the response path
//
// A step that refuses the call returns a *refused, which refuse audits and
// answers. Calls of names the token does not allow or the gateway does not
// expose are refused before any of this, by the middleware (refusal.go);
// resolve checks again, as a pin change may have raced it.

// toolCall is one tools/call on its way through the steps; each step fills
// in what it established.
type toolCall struct {
	req   *mcp.CallToolRequest
	start time.Time

	principal *authz.Principal // authenticate

	args      map[string]any  // resolve: decoded strictly (args.go)
	argsHash  string          // resolve: hex SHA-256 of the canonical arguments
	auditArgs json.RawMessage // resolve: redacted arguments, with audit_arguments: true
	tool      *tool           // resolve: also when refused as not permitted or disabled

	policyCall *authz.Call // authorize: what Cedar was asked

	approval   string // confirm: "approved by admin", "not required (read-only)", …
	approvalID string // confirm: the approval id, when the call was held

	payment *x402.SettleResponse // pay: the settlement of a paid tool's call
}

// callTool is the handler of every tool the gateway exposes (sync.go).
func (s *Server) callTool(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	c, err := s.authenticate(req)
	if err != nil {
		return nil, err
	}
	if r := s.resolve(c); r != nil {
		return s.refuse(ctx, c, r)
	}
	if r := s.authorize(c); r != nil {
		return s.refuse(ctx, c, r)
	}
	if r := s.confirmStep(ctx, c); r != nil {
		return s.refuse(ctx, c, r)
	}
	if r := s.pay(ctx, c); r != nil {
		return s.refuse(ctx, c, r)
	}
	durable, err := s.auditDecision(ctx, c)
	if err != nil {
		return nil, err
	}
	res, err := s.forward(ctx, c)
	if derr := durable(); derr != nil {
		s.log.Error("audit entry not durable: withholding the call's result", "err", derr)
		return nil, errWithheld
	}
	res, err = s.redact(c, res, err)
	s.auditOutcome(ctx, c, res, err)
	if err != nil {
		return withReceipt(failed("upstream %s: %s", c.tool.upstream.cfg.Name, err), c.payment), nil
	}
	return withReceipt(res, c.payment), nil
}

// refused ends a call before it is forwarded: the audit reason and the
// answer, a JSON-RPC error (err) or a tool result (result).
type refused struct {
	reason  string
	err     error
	result  *mcp.CallToolResult
	audited bool // the step wrote its own entry (an input_required round)
}

func deny(reason string, err error) *refused { return &refused{reason: reason, err: err} }

// refuse audits r (auditRefused) and answers it.
func (s *Server) refuse(ctx context.Context, c *toolCall, r *refused) (*mcp.CallToolResult, error) {
	if !r.audited {
		s.auditRefused(ctx, c, r.reason)
	}
	return r.result, r.err
}

// refusal is a JSON-RPC error for calls the gateway refuses before any
// person is asked: the same code as an unknown tool.
func refusal(format string, args ...any) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "chatmcp-gateway: " + fmt.Sprintf(format, args...)}
}

// failed is a tool result with isError: the answer to a call that was not
// approved or that the upstream did not answer.
func failed(format string, args ...any) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "chatmcp-gateway: " + fmt.Sprintf(format, args...)}}}
}
