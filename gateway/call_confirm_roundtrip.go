package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/approval"
)

// The confirmation gate for a 2026-07-28 client (protocol.go). Such a
// client has no session on which the gateway could send an elicitation
// form while the call waits, so the gate tells it in a multi-round-trip
// exchange instead:
//
//  1. The call is held (gateway/approval) as for any client, and answered
//     at once with an input_required result: one elicitation input request
//     naming the approval id and how it is decided, and requestState = the
//     approval id. The round is audited (decision "held").
//  2. The client answers the form (its answer approves nothing, unless the
//     upstream set caller_elicitation_approves) and retries the call with
//     the same arguments and that requestState. The retry waits for the
//     decision, with progress notifications when it carries a progress
//     token, and then goes on like any confirmed call: audited, forwarded
//     or refused.
//
// A requestState releases one call: the retry of the same principal (token
// chain), tool and arguments (their canonical SHA-256), once. Any other
// retry is refused and audited; a client that never retries leaves an
// audited "abandoned" entry once the decision is made.
//
// A 2026-07-28 client that did not declare elicitation gets what an older
// client without it gets: its request stays open until the decision, with
// progress notifications (call_confirm.go).

// inputApproval is the key of the gate's input request.
const inputApproval = "approval"

// rounds are the held calls of stateless clients between their first
// request and their retry, by approval id. The zero value is ready.
type rounds struct {
	mu sync.Mutex
	m  map[string]*round
}

// round is one held call between its rounds.
type round struct {
	chain, tool, argsHash string
	held                  approval.Request
	cancel                context.CancelFunc // cancels the approval (the retry went away)
	done                  chan struct{}      // closed when dec is set
	claimed               chan struct{}      // closed when its retry took it
	dec                   approval.Decision
}

func (rs *rounds) put(r *round) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = map[string]*round{}
	}
	rs.m[r.held.ID] = r
}

// take removes and returns the round of id, nil when there is none.
func (rs *rounds) take(id string) *round {
	return rs.claim(id, func(*round) bool { return true })
}

// claim removes and returns the round of id when mine accepts it; a round
// mine refuses stays, untouched, for its own retry.
func (rs *rounds) claim(id string, mine func(*round) bool) *round {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.m[id]
	if r == nil || !mine(r) {
		return nil
	}
	delete(rs.m, id)
	return r
}

// confirmStep is the confirm step of the pipeline: by input_required
// rounds for a stateless client that can answer a form, otherwise confirm.
func (s *Server) confirmStep(ctx context.Context, c *toolCall) *refused {
	if c.tool.readOnly || !roundTripClient(c.req.Session) || s.exempt(c) {
		return s.confirm(ctx, c)
	}
	if st := c.req.Params.RequestState; st != "" {
		return s.confirmRetry(ctx, c, st)
	}
	return s.confirmFirstRound(ctx, c)
}

// roundTripClient reports whether the caller is a stateless client that
// declared elicitation, so that it can answer the gate's input request.
func roundTripClient(ss *mcp.ServerSession) bool {
	if !statelessSession(ss) {
		return false
	}
	caps := clientCapabilities(ss)
	return caps != nil && caps.Elicitation != nil
}

// confirmFirstRound holds the call and answers input_required.
func (s *Server) confirmFirstRound(ctx context.Context, c *toolCall) *refused {
	held, wait := s.approvals.Hold(s.approvalRequest(c))
	c.approvalID = held.ID
	s.log.Info("call held for approval (input_required)", "id", held.ID, "tool", held.Tool, "principal", held.Principal)
	// The approval outlives this request: it waits for the retry, under
	// the broker's own timeout.
	actx, cancel := context.WithCancel(context.WithoutCancel(s.ctx))
	r := &round{chain: c.principal.ChainID, tool: c.tool.exposed, argsHash: c.argsHash, held: held,
		cancel: cancel, done: make(chan struct{}), claimed: make(chan struct{})}
	s.rounds.put(r)
	s.wg.Add(1)
	go s.awaitRound(actx, r, wait, *c)

	e := s.entry(c, auditCall)
	e.Decision, e.Reason = "held", "approval pending: input_required sent"
	if err := s.appendAudit(ctx, e); err != nil {
		s.log.Error("audit append failed", "err", err)
	}
	return &refused{audited: true, result: &mcp.CallToolResult{
		InputRequests: mcp.InputRequestMap{inputApproval: approvalForm(held)},
		RequestState:  held.ID,
	}}
}

// awaitRound waits for the decision on r, then for its retry to claim it
// for RoundTripClaimWindow; a round nobody claims is forgotten and audited
// as abandoned.
func (s *Server) awaitRound(ctx context.Context, r *round, wait func(context.Context) approval.Decision, c toolCall) {
	defer s.wg.Done()
	defer r.cancel()
	r.dec = wait(ctx)
	close(r.done)
	t := time.NewTimer(RoundTripClaimWindow)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.claimed:
		return
	case <-s.ctx.Done():
	}
	if s.rounds.take(r.held.ID) == nil {
		return // claimed by its retry
	}
	c.approvalID, c.approval = r.held.ID, outcomeText(r.dec)
	e := s.entry(&c, auditCall)
	e.Decision, e.Reason = "denied", "approval "+c.approval+"; abandoned: the client did not retry"
	if err := s.appendAudit(s.ctx, e); err != nil {
		s.log.Error("audit append failed", "err", err)
	}
}

// confirmRetry is the retry of a held call: it must name a round of this
// principal, tool and arguments, and waits for its decision.
func (s *Server) confirmRetry(ctx context.Context, c *toolCall, state string) *refused {
	r := s.rounds.claim(state, func(r *round) bool {
		return r.chain == c.principal.ChainID && r.tool == c.tool.exposed && r.argsHash == c.argsHash
	})
	if r == nil {
		return deny("approval state mismatch",
			refusal("requestState does not name a held call of yours to %q with these arguments", c.tool.exposed))
	}
	close(r.claimed)
	c.approvalID = r.held.ID
	if res, ok := c.req.Params.InputResponses[inputApproval].(*mcp.ElicitResult); ok && r.held.CallerMayApprove {
		out := approval.Denied
		if res.Action == "accept" && res.Content["approve"] == true {
			out = approval.Approved
		}
		// Only under caller_elicitation_approves: the broker refuses a
		// caller's approval otherwise.
		_ = s.approvals.DecideInSession(r.held.ID, out, "caller elicitation", "")
	}
	stop := s.reportWaiting(ctx, c.req, r.held)
	select {
	case <-r.done:
	case <-ctx.Done():
		r.cancel() // the caller went away: the approval is cancelled
		<-r.done
	}
	stop()
	c.approval = outcomeText(r.dec)
	if r.dec.Outcome != approval.Approved {
		return &refused{reason: "approval " + c.approval,
			result: failed("call to %s was not approved (%s); the upstream did not receive it", c.tool.exposed, c.approval)}
	}
	return nil
}

func outcomeText(d approval.Decision) string {
	t := string(d.Outcome)
	if d.By != "" {
		t += " by " + d.By
	}
	return t
}

// approvalForm is the gate's input request: a form that informs (nothing
// to fill in) or, under caller_elicitation_approves, asks.
func approvalForm(held approval.Request) *mcp.ElicitParams {
	argText, _ := json.Marshal(held.Arguments)
	p := &mcp.ElicitParams{
		Mode: "form",
		Message: fmt.Sprintf("%s's call to %s with arguments %s waits for approval %s. A person approves it out of band: `chatmcp approvals approve %s` (or deny). Retry the call with this requestState to wait for the decision; it is not approved from here.",
			held.Principal, held.Tool, argText, held.ID, held.ID),
		RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{}},
	}
	if held.CallerMayApprove {
		p.Message = fmt.Sprintf("Allow %s to call %s with arguments %s? (approval %s; also decidable with `chatmcp approvals approve %s`)",
			held.Principal, held.Tool, argText, held.ID, held.ID)
		p.RequestedSchema = map[string]any{"type": "object",
			"properties": map[string]any{"approve": map[string]any{"type": "boolean", "title": "Approve this call"}},
			"required":   []any{"approve"}}
	}
	return p
}
