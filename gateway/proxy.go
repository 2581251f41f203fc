package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/gateway/approval"
	"github.com/chatmcp/chatmcp/gateway/authz"
	"github.com/chatmcp/chatmcp/gateway/upstream"
)

// refusal is a JSON-RPC error for calls the gateway refuses before any
// person is asked: the same code as an unknown tool.
func refusal(format string, args ...any) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "chatmcp-gateway: " + fmt.Sprintf(format, args...)}
}

func failed(format string, args ...any) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "chatmcp-gateway: " + fmt.Sprintf(format, args...)}}}
}

// callTool is every tools/call: authorize, gate, audit, forward, redact.
func (s *Server) callTool(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	start := s.now()
	name := req.Params.Name
	p := principalOf(req.Extra)
	if p == nil {
		return nil, refusal("unauthenticated")
	}
	entry := audit.Entry{Type: "gateway.call", Actor: "token:" + p.TokenID, TokenChain: p.ChainID, Principal: p.Name(), Tool: name, Action: "tools/call"}
	args, argsHash, err := decodeArgs(req.Params.Arguments)
	entry.ArgsSHA256 = argsHash
	if err == nil && s.cfg.AuditArguments {
		entry.Arguments = s.auditArguments(req, args)
	}
	// Every append below outlives the caller's context (appendAudit);
	// refusals before authorization are rate-limited (refusal.go).
	deny := func(reason string, err error) (*mcp.CallToolResult, error) {
		entry.Decision, entry.Reason = "denied", reason
		entry.DurationMS = ms(s.now().Sub(start))
		if rateLimitedReason(reason) {
			entry.Tool = clip(entry.Tool)
			s.auditRefusal(ctx, entry)
		} else if aerr := s.appendAudit(ctx, entry); aerr != nil {
			s.log.Error("audit append failed", "err", aerr)
		}
		return nil, err
	}
	if err != nil {
		return deny("malformed arguments", refusal("%v", err))
	}
	s.mu.RLock()
	t := s.tools[name]
	s.mu.RUnlock()
	// The middleware refused these already (refuseCallName); a pin change
	// may have raced it. An unknown tool and one the token does not allow
	// get the same answer; only the audit entry tells them apart.
	switch {
	case t == nil:
		return deny(reasonUnknownTool, unavailable(name))
	case !p.Allows(name):
		entry.Upstream = t.upstream.cfg.Name
		return deny(reasonNotPermitted, unavailable(name))
	case !t.enabled:
		entry.Upstream = t.upstream.cfg.Name
		return deny(reasonDisabled, refusal("tool %q is disabled: its definition changed and awaits approval", name))
	}
	entry.Upstream = t.upstream.cfg.Name
	if !p.AllowsCall(name, args) {
		return deny("arguments not permitted by token", refusal("the arguments of this call to %q are not permitted by your token's constraints", name))
	}
	cc := &authz.Call{Principal: p.Name(), Tool: name, Upstream: t.upstream.cfg.Name, ReadOnly: t.readOnly, Arguments: args}
	if ok, why := s.policy.Allow(authz.ActionCall, cc); !ok {
		return deny(why, refusal("call to %q refused by policy", name))
	}

	approvalNote := "not required (read-only)"
	if !t.readOnly {
		exempt, _ := s.policy.Allow(authz.ActionSkipConfirmation, cc)
		if exempt {
			approvalNote = "exempted by policy"
		} else {
			d := s.confirm(ctx, req, p, t, args, argsHash)
			approvalNote = string(d.Outcome)
			if d.By != "" {
				approvalNote += " by " + d.By
			}
			entry.Request = d.id
			if d.Outcome != approval.Approved {
				entry.Decision, entry.Reason = "denied", "approval "+approvalNote
				entry.DurationMS = ms(s.now().Sub(start))
				// A caller that went away (approval cancelled) has a
				// cancelled ctx; its entry is written all the same.
				if aerr := s.appendAudit(ctx, entry); aerr != nil {
					s.log.Error("audit append failed", "err", aerr)
				}
				return failed("call to %s was not approved (%s); the upstream did not receive it", name, approvalNote), nil
			}
		}
	}

	entry.Decision, entry.Reason = "granted", "approval "+approvalNote
	entry.DurationMS = ms(s.now().Sub(start))
	if err := s.appendAudit(ctx, entry); err != nil {
		s.log.Error("audit append failed: refusing call", "err", err)
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "chatmcp-gateway: audit log unavailable; call refused"}
	}

	res, callErr := s.forward(ctx, req, t, p, args)

	// The outcome is recorded off the response path: the decision entry
	// above already made the call auditable before the upstream saw it, and
	// a failed write here breaks the log (audit.ErrBroken), which refuses
	// every later call at its decision entry.
	done := entry
	done.Type = "gateway.call.result"
	done.DurationMS = ms(s.now().Sub(start))
	switch {
	case callErr != nil:
		done.Decision, done.Reason = "error", "upstream error"
	case res.IsError:
		done.Decision, done.Reason = "error", "tool error"
	default:
		done.Decision, done.Reason = "ok", ""
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.appendAudit(ctx, done); err != nil {
			s.log.Error("audit append of a call result failed", "err", err)
		}
	}()
	if callErr != nil {
		return failed("upstream %s: %s", t.upstream.cfg.Name, s.redactFor(req).String(callErr.Error())), nil
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// auditArguments returns args for an audit entry, redacted of layer-1
// secrets and the session's layer-2 credentials (audit_arguments: true).
func (s *Server) auditArguments(req *mcp.CallToolRequest, args map[string]any) json.RawMessage {
	canon, err := json.Marshal(args)
	if err != nil {
		return nil
	}
	red := s.redactFor(req).String(string(canon))
	if !json.Valid([]byte(red)) {
		// Redaction cut through JSON syntax: keep it as one string.
		b, _ := json.Marshal(red)
		return b
	}
	return json.RawMessage(red)
}

// decision is an approval outcome with the approval id.
type decision struct {
	approval.Decision
	id string
}

// confirm holds the call until a person decides through an authenticated
// channel other than the caller's own session: the admin approvals API
// (chatmcp approvals). When the client declared elicitation, the gateway
// also tells it by an elicitation form that the call waits, with the
// approval id and the command that approves it; the caller's answer approves
// nothing (approval.ErrSelfApproval) unless the tool's upstream opted in
// with caller_elicitation_approves. The first decision wins.
func (s *Server) confirm(ctx context.Context, req *mcp.CallToolRequest, p *authz.Principal, t *tool, args map[string]any, argsHash string) decision {
	name := t.exposed
	callerApproves := t.upstream.cfg.CallerElicitationApproves
	redacted, _ := s.redactor.Value(args).(map[string]any)
	held, wait := s.approvals.Hold(approval.Request{Principal: p.Name(), TokenID: p.TokenID, Tool: name, ArgumentsSHA256: argsHash,
		Arguments: redacted, Session: sessionID(req.Session), CallerMayApprove: callerApproves})
	s.log.Info("call held for approval", "id", held.ID, "tool", name, "principal", p.Name())
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	if ss := req.Session; ss != nil && ss.ID() != "" && ss.InitializeParams() != nil && ss.InitializeParams().Capabilities != nil && ss.InitializeParams().Capabilities.Elicitation != nil {
		go func() {
			argText, _ := json.Marshal(redacted)
			params := &mcp.ElicitParams{
				Mode: "form",
				Message: fmt.Sprintf("%s's call to %s with arguments %s waits for approval %s. A person approves it out of band: `chatmcp approvals approve %s` (or deny). This call is not approved from here.",
					p.Name(), name, argText, held.ID, held.ID),
				// Nothing to fill in: the form only informs.
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{}},
			}
			if callerApproves {
				params.Message = fmt.Sprintf("Allow %s to call %s with arguments %s? (approval %s; also decidable with `chatmcp approvals approve %s`)",
					p.Name(), name, argText, held.ID, held.ID)
				params.RequestedSchema = map[string]any{
					"type": "object",
					"properties": map[string]any{
						"approve": map[string]any{"type": "boolean", "title": "Approve this call"},
					},
					"required": []any{"approve"},
				}
			}
			res, err := ss.Elicit(ectx, params)
			if err != nil || ectx.Err() != nil || !callerApproves {
				return // the out-of-band path decides
			}
			out := approval.Denied
			if res.Action == "accept" && res.Content["approve"] == true {
				out = approval.Approved
			}
			if err := s.approvals.DecideInSession(held.ID, out, "caller elicitation", ss.ID()); err != nil && !errors.Is(err, approval.ErrUnknown) {
				s.log.Warn("elicitation decision refused", "id", held.ID, "err", err)
			}
		}()
	}
	return decision{Decision: wait(ctx), id: held.ID}
}

// forward sends the call to the upstream and redacts the result. The
// arguments sent are the canonical encoding of args, the value that was
// authorized, never the client's bytes (args.go).
func (s *Server) forward(ctx context.Context, req *mcp.CallToolRequest, t *tool, p *authz.Principal, args map[string]any) (*mcp.CallToolResult, error) {
	canon, err := canonicalArgs(args)
	if err != nil {
		return nil, err
	}
	c, err := s.connFor(ctx, t.upstream, req.Session, p)
	if err != nil {
		return nil, err
	}
	// A reconnection re-checks the pins; a definition that changed
	// meanwhile is not called.
	s.mu.RLock()
	cur := s.tools[t.exposed]
	s.mu.RUnlock()
	if cur == nil || !cur.enabled {
		return nil, errors.New("the tool's definition changed; call not forwarded")
	}
	cl := &upstream.Call{Session: req.Session, Ctx: ctx, ProgressToken: req.Params.GetProgressToken()}
	id, end := c.Begin(cl)
	defer end()
	// Ask the upstream for every log level (the 2026-07-28 protocol takes
	// it per request); the client's own level filters what it receives.
	params := &mcp.CallToolParams{Name: t.def.Name, Arguments: canon,
		Meta: mcp.Meta{mcp.MetaKeyLogLevel: "debug"}}
	if cl.ProgressToken != nil {
		params.SetProgressToken(upstreamProgressToken(id))
	}
	res, err := c.Client().CallTool(ctx, params)
	if err != nil {
		return nil, err
	}
	return s.redactResult(req, res)
}

// redactFor returns the redactor for what goes to req's session: layer-1
// secrets plus the session's own layer-2 credentials.
func (s *Server) redactFor(req *mcp.CallToolRequest) interface{ String(string) string } {
	p := principalOf(req.Extra)
	if p == nil {
		return s.redactor
	}
	creds := s.creds.Get(p.ChainID, sessionID(req.Session))
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
func (s *Server) redactResult(req *mcp.CallToolRequest, res *mcp.CallToolResult) (*mcp.CallToolResult, error) {
	r := s.redactor
	if p := principalOf(req.Extra); p != nil {
		if creds := s.creds.Get(p.ChainID, sessionID(req.Session)); len(creds) > 0 {
			vals := make([][]byte, 0, len(creds))
			for _, v := range creds {
				vals = append(vals, v)
			}
			r = r.With(vals...)
		}
	}
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
