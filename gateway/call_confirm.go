package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/approval"
	"github.com/chatmcp/chatmcp/gateway/authz"
)

// confirm holds a call of a tool that is not read-only until a person
// decides, unless the Cedar policy permits Action::"skip_confirmation". A
// decision other than approved ends the call with a tool result saying so;
// the upstream never sees it.
func (s *Server) confirm(ctx context.Context, c *toolCall) *refused {
	switch {
	case c.tool.readOnly:
		c.approval = "not required (read-only)"
		return nil
	case s.exempt(c):
		c.approval = "exempted by policy"
		return nil
	}
	d := s.holdForApproval(ctx, c)
	c.approval = string(d.Outcome)
	if d.By != "" {
		c.approval += " by " + d.By
	}
	if d.Outcome != approval.Approved {
		return &refused{reason: "approval " + c.approval,
			result: failed("call to %s was not approved (%s); the upstream did not receive it", c.tool.exposed, c.approval)}
	}
	return nil
}

func (s *Server) exempt(c *toolCall) bool {
	ok, _ := s.policy.Allow(authz.ActionSkipConfirmation, c.policyCall)
	return ok
}

// holdForApproval holds the call until a person decides through an
// authenticated channel other than the caller's own session: the admin
// approvals API (chatmcp approvals), or, for a token that names an
// approver (an agent's grant), a statement signed for exactly that
// approver (statement.go, chatmcp chat approve). The caller hears that its call waits:
// by an elicitation form when it declared elicitation (elicitApproval), and
// by progress notifications when it sent a progress token
// (reportWaiting). The first decision wins.
func (s *Server) holdForApproval(ctx context.Context, c *toolCall) approval.Decision {
	held, wait := s.approvals.Hold(s.approvalRequest(c))
	c.approvalID = held.ID
	s.log.Info("call held for approval", "id", held.ID, "tool", held.Tool, "principal", held.Principal)
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	if caps := clientCapabilities(c.req.Session); caps != nil && caps.Elicitation != nil && c.req.Session.ID() != "" {
		go s.elicitApproval(ectx, c.req.Session, held)
	}
	defer s.reportWaiting(ctx, c.req, held)()
	return wait(ctx)
}

// approvalRequest is what a person is asked to decide about c: who calls
// what, the redacted arguments and their hash, and who may decide.
func (s *Server) approvalRequest(c *toolCall) approval.Request {
	redacted, _ := s.redactorFor(c).Value(c.args).(map[string]any)
	return approval.Request{Principal: c.principal.Name(), TokenID: c.principal.TokenID,
		Tool: c.tool.exposed, ArgumentsSHA256: c.argsHash, Arguments: redacted, Session: sessionID(c.req.Session),
		// A grant names its approver: its holder never approves, opt-in or not.
		CallerMayApprove: c.tool.upstream.cfg.CallerElicitationApproves && c.principal.Approver == "", Approver: c.principal.Approver,
		Holder: c.principal.Holder, Grant: c.principal.ChainID}
}

// elicitApproval sends the caller's session an elicitation form about the
// held call. The form only informs: it names the approval id and the
// command that decides it, and the caller's answer approves nothing
// (approval.ErrSelfApproval) unless the tool's upstream opted in with
// caller_elicitation_approves (held.CallerMayApprove).
func (s *Server) elicitApproval(ctx context.Context, ss *mcp.ServerSession, held approval.Request) {
	argText, _ := json.Marshal(held.Arguments)
	params := &mcp.ElicitParams{
		Mode: "form",
		Message: fmt.Sprintf("%s's call to %s with arguments %s waits for approval %s. A person approves it out of band: `chatmcp approvals approve %s` (or deny). This call is not approved from here.",
			held.Principal, held.Tool, argText, held.ID, held.ID),
		// Nothing to fill in: the form only informs.
		RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{}},
	}
	if held.CallerMayApprove {
		params.Message = fmt.Sprintf("Allow %s to call %s with arguments %s? (approval %s; also decidable with `chatmcp approvals approve %s`)",
			held.Principal, held.Tool, argText, held.ID, held.ID)
		params.RequestedSchema = map[string]any{
			"type": "object",
			"properties": map[string]any{
				"approve": map[string]any{"type": "boolean", "title": "Approve this call"},
			},
			"required": []any{"approve"},
		}
	}
	res, err := ss.Elicit(ctx, params)
	if err != nil || ctx.Err() != nil || !held.CallerMayApprove {
		return // the out-of-band path decides
	}
	out := approval.Denied
	if res.Action == "accept" && res.Content["approve"] == true {
		out = approval.Approved
	}
	if err := s.approvals.DecideInSession(held.ID, out, "caller elicitation", ss.ID()); err != nil && !errors.Is(err, approval.ErrUnknown) {
		s.log.Warn("elicitation decision refused", "id", held.ID, "err", err)
	}
}

// reportWaiting sends the caller a progress notification ("waiting for
// approval ID") every Options.ApprovalProgressInterval while its call is
// held, when the request carries a progress token: a client whose request
// timeout is shorter than approval_timeout and restarts on progress (the
// TypeScript SDK's resetTimeoutOnProgress) keeps waiting. Progress counts
// the seconds waited, out of the approval timeout. The returned stop ends
// the notifications; none is sent after it returns.
func (s *Server) reportWaiting(ctx context.Context, req *mcp.CallToolRequest, held approval.Request) (stop func()) {
	tok := req.Params.GetProgressToken()
	if tok == nil || req.Session == nil {
		return func() {}
	}
	every := s.opts.ApprovalProgressInterval
	if every <= 0 {
		every = DefaultApprovalProgressInterval
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok,
				Progress: float64(n) * every.Seconds(), Total: held.Expires.Sub(held.Created).Seconds(),
				Message: "waiting for approval " + held.ID})
		}
	}()
	return func() { cancel(); <-done }
}
