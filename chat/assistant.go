package chat

import (
	"context"
	"fmt"
	"time"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/wallet"
)

// The inviter's side of the assistant protocol (agentapi), shared by
// `chatmcp chat agent` and `chatmcp web`: deriving a grant, finding the
// grants one sent, and the approval requests still waiting.

// DeriveGrant attenuates parent (the inviter's own gateway token) offline
// for holder: tools, expiry, the approver of its held calls and the
// holder. It returns the grant and its effective expiry, the earlier of
// expires and parent's. Each grant carries a fresh nonce, so two grants
// with equal tools, expiry, approver and holder (one agent invited to two
// conversations in the same second) are two tokens: removing the agent
// from one conversation revokes that grant only.
func DeriveGrant(parent string, tools []string, expires time.Time, approver, holder wallet.Address) (string, time.Time, error) {
	nonce, err := captoken.NewNonce()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("deriving the grant: %w", err)
	}
	grant, err := captoken.Attenuate(parent, captoken.Caveat{Tools: tools, Expires: expires,
		Approver: approver.String(), Holder: holder.String(), Nonce: nonce})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("deriving the grant from your token: %w", err)
	}
	v, err := captoken.Parse(grant)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("deriving the grant: %w", err)
	}
	return grant, v.Expires, nil
}

// GrantsTo returns the grants this client sent to agent in conversation,
// oldest first.
func (c *Client) GrantsTo(ctx context.Context, conversation string, agent wallet.Address) ([]*agentapi.Grant, error) {
	msgs, err := c.ReadAll(ctx, ReadOptions{Conversation: conversation})
	if err != nil {
		return nil, err
	}
	var out []*agentapi.Grant
	for _, m := range msgs {
		if m.Text == "" || !m.Sender.Equal(c.Address()) {
			continue
		}
		if msg, err := agentapi.ParseMessage(m.Text); err == nil && msg.Kind == agentapi.KindGrant &&
			msg.Grant.Agent.Equal(agent) && msg.Grant.Conversation == conversation {
			out = append(out, msg.Grant)
		}
	}
	return out, nil
}

// ApprovalRequest is an agent's approval request waiting in a
// conversation.
type ApprovalRequest struct {
	agentapi.ApprovalRequest
	// Conversation and Message locate the request.
	Conversation, Message string
}

// ApprovalRequests lists the approval requests waiting in the
// conversations the client can read (only conversation, if non-empty):
// posted by the agent that asks, an agent that holds a grant in that
// conversation (one its approver sent there), not expired at now, and not
// yet answered by a reply of that agent whose receipt names the approval.
// A request from anyone else is left out: a member could otherwise copy
// the id and arguments hash of a real request under a summary that lies.
// So is one whose arguments do not hash to the arguments_sha256 a decision
// would sign (agentapi VerifyArguments): what a person is shown is what
// they sign.
func (c *Client) ApprovalRequests(ctx context.Context, conversation string, now time.Time) ([]ApprovalRequest, error) {
	ok, _, err := c.CheckedApprovalRequests(ctx, conversation, now)
	return ok, err
}

// RefusedApprovalRequest is an approval request ApprovalRequests leaves
// out because its arguments fail agentapi VerifyArguments (Err says how).
// It must not be shown as approvable nor signed; it is returned so that a
// client can say why an id it was asked to decide is refused.
type RefusedApprovalRequest struct {
	ApprovalRequest
	Err error
}

// CheckedApprovalRequests is ApprovalRequests that also returns the
// requests it refused for their arguments.
func (c *Client) CheckedApprovalRequests(ctx context.Context, conversation string, now time.Time) ([]ApprovalRequest, []RefusedApprovalRequest, error) {
	convs := []string{conversation}
	if conversation == "" {
		mine, requests, err := c.Conversations(ctx)
		if err != nil {
			return nil, nil, err
		}
		// Requests too: a group whose creator this user has not answered
		// yet is readable all the same.
		convs = append(mine, requests...)
	}
	var out []ApprovalRequest
	var refused []RefusedApprovalRequest
	for _, id := range convs {
		msgs, err := c.ReadAll(ctx, ReadOptions{Conversation: id})
		if err != nil {
			return nil, nil, err
		}
		done := map[string]bool{}
		granted := map[string]bool{} // agents holding a grant sent by its approver
		var found []ApprovalRequest
		for _, m := range msgs {
			if m.Text == "" {
				continue
			}
			pm, err := agentapi.ParseMessage(m.Text)
			if err != nil {
				continue
			}
			switch pm.Kind {
			case agentapi.KindGrant:
				if g := pm.Grant; g.Approver.Equal(m.Sender) && g.Conversation == id {
					granted[g.Agent.String()] = true
				}
			case agentapi.KindApprovalRequest:
				r := pm.ApprovalRequest
				if !r.RequestedBy.Equal(m.Sender) || !now.Before(r.Expires) {
					continue
				}
				found = append(found, ApprovalRequest{ApprovalRequest: *r, Conversation: id, Message: m.ID})
			case agentapi.KindReply:
				for _, t := range pm.Reply.Receipt.Tools {
					if t.ApprovalID != "" && pm.Reply.Receipt.Agent.Equal(m.Sender) {
						done[t.ApprovalID] = true
					}
				}
			}
		}
		for _, r := range found {
			if done[r.ID] || !granted[r.RequestedBy.String()] {
				continue
			}
			if err := r.VerifyArguments(); err != nil {
				refused = append(refused, RefusedApprovalRequest{ApprovalRequest: r, Err: err})
				continue
			}
			out = append(out, r)
		}
	}
	return out, refused, nil
}
