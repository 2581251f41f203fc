package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/gateway/approval"
	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/internal/edge"
)

// The confirm step's second channel: a call held under a token that names
// an approver (an agent's grant, captoken.Caveat.Approver) is decided,
// besides by the admin, by an approval statement (agentapi) that the
// approver's client posts to POST /v1/approvals/{id}/statement. The
// gateway accepts a statement only when, in this order:
//
//  1. it parses and is for the approval id of the path;
//  2. it verifies (agentapi.ApprovalStatement.Verify): the device
//     certificate is certified by the statement's wallet, the device
//     signed it, it has not expired and does not expire more than
//     agentapi.MaxStatementLifetime ahead;
//  3. the call is pending (a decided call is not: a statement is
//     single-use);
//  4. the call's token names an approver, and the statement's wallet is
//     exactly it, and not the token's holder (never the agent itself,
//     never another member);
//  5. its arguments hash is the held call's.
//
// Checks 3 to 5 run under the broker's lock with the decision
// (approval.Broker.DecideIf), so nothing decides the call in between. A
// refusal leaves the call pending for its approver. Every statement that
// verified is audited, accepted or not, with the wallet and device that
// signed it and the grant (token chain) the call was made under.

// auditApproval is the audit type of a decision by statement.
const auditApproval = "gateway.approval"

// decideByStatement applies an approval statement for approval id; the
// error is an *edge.Error naming the failed check.
func (s *Server) decideByStatement(ctx context.Context, id string, body []byte) error {
	st, err := agentapi.ParseApprovalStatement(body)
	if err != nil {
		return edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadStatement, "%v", err)
	}
	if st.ApprovalID != id {
		return edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadStatement, "the statement is for approval %s, not %s", st.ApprovalID, id)
	}
	if err := st.Verify(s.now()); err != nil {
		if c, _ := agentapi.CheckOf(err); c == agentapi.CheckExpired {
			return edge.Errorf(http.StatusForbidden, gatewayapi.ReasonStatementExpired, "%v", err)
		}
		return edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadStatement, "%v", err)
	}
	wallet := st.Approver.String()
	outcome := approval.Denied
	if st.Decision == agentapi.Approve {
		outcome = approval.Approved
	}
	by := fmt.Sprintf("wallet %s (device %s)", wallet, st.Device.Device)
	var held approval.Request
	err = s.approvals.DecideIf(id, outcome, by, func(req approval.Request) error {
		held = req
		switch {
		case req.Approver == "":
			return edge.Errorf(http.StatusForbidden, gatewayapi.ReasonNoApprover, "the call's token names no approver: only the gateway's admin decides it")
		case wallet == req.Holder:
			return edge.Errorf(http.StatusForbidden, gatewayapi.ReasonNotApprover, "%s holds the token: a holder never approves its own calls", wallet)
		case wallet != req.Approver:
			return edge.Errorf(http.StatusForbidden, gatewayapi.ReasonNotApprover, "the call's grant names %s as its approver, not %s", req.Approver, wallet)
		case st.ArgumentsSHA256.String() != req.ArgumentsSHA256:
			return edge.Errorf(http.StatusConflict, gatewayapi.ReasonArgumentsMismatch, "the statement approves arguments %s, the held call has %s", st.ArgumentsSHA256, req.ArgumentsSHA256)
		}
		return nil
	})
	e := audit.Entry{Type: auditApproval, Actor: "wallet:" + wallet, Action: "approval.statement", Request: id,
		Principal: held.Principal, Tool: held.Tool, ArgsSHA256: st.ArgumentsSHA256.String(), TokenChain: held.Grant}
	switch {
	case errors.Is(err, approval.ErrUnknown):
		err = edge.Errorf(http.StatusNotFound, gatewayapi.ReasonNotPending, "no pending approval %s (never held, already decided, timed out or cancelled)", id)
	case err == nil:
		e.Decision, e.Reason = string(outcome), "by "+by
		if aerr := s.appendAudit(ctx, e); aerr != nil {
			s.log.Error("audit append of an approval statement failed", "err", aerr)
		}
		s.log.Info("approval decided by statement", "id", id, "outcome", outcome, "approver", wallet, "device", st.Device.Device, "grant", held.Grant)
		return nil
	}
	var ee *edge.Error
	if errors.As(err, &ee) {
		e.Decision, e.Reason = "denied", "statement by "+by+" refused: "+ee.Reason
		s.auditRefusal(ctx, e)
	}
	return err
}
