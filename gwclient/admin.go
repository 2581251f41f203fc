package gwclient

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/internal/edge"
)

// MaxResponseSize caps an admin API response body.
const MaxResponseSize = 4 << 20

// Admin calls a gateway's admin API (/admin/v1/...).
type Admin struct {
	// BaseURL is the gateway, https://host:port. Required.
	BaseURL string
	// Token is the admin token. Required.
	Token string
	// HTTP is the client, whose transport must enforce a Trust. Required.
	HTTP *http.Client
}

// ReasonHTTP is the Reason of an error answer that carries no reason code
// (not from a gateway, or from one older than reason codes).
const ReasonHTTP = edge.ReasonHTTP

// HTTPError is a non-2xx answer from the gateway (internal/edge's one
// client error type). Callers branch on Reason, one of the
// gatewayapi.Reason codes (or ReasonHTTP), never on Msg.
type HTTPError = edge.APIError

// ReasonOf returns the reason code of a gateway's error answer in err's
// chain, and false when err is not one.
func ReasonOf(err error) (string, bool) { return edge.ReasonOf(err) }

// IsReason reports whether err is a gateway's error answer with the
// reason code reason.
func IsReason(err error, reason string) bool { return edge.IsReason(err, reason) }

// client is the JSON client of the gateway's HTTP surface. Admin answers
// are decoded ignoring unknown members so that a newer gateway can add
// fields: the peer is the authenticated gateway, and nothing decoded there
// is a security decision.
func client(hc *http.Client, lenient bool) *edge.Client {
	return &edge.Client{Service: "gateway", HTTP: hc, MaxResponse: MaxResponseSize, AllowUnknownMembers: lenient}
}

// do sends a request and decodes a JSON answer into out (nil: expect none).
func (a *Admin) do(ctx context.Context, method, path string, in, out any) error {
	return client(a.HTTP, true).Do(ctx, method, strings.TrimSuffix(a.BaseURL, "/")+path, a.Token, in, out)
}

// Bodies of the admin API, declared in gatewayapi.
type (
	// MintRequest asks for a new token.
	MintRequest = gatewayapi.MintRequest
	// Minted is a new token.
	Minted = gatewayapi.MintResponse
	// Approval is a tools/call waiting for a person.
	Approval = gatewayapi.Approval
	// PendingTool is a tool whose definition changed since it was pinned.
	PendingTool = gatewayapi.PendingTool
	// Info is the gateway's self-description.
	Info = gatewayapi.Info
)

// Mint asks the gateway for a token.
func (a *Admin) Mint(ctx context.Context, r MintRequest) (*Minted, error) {
	var m Minted
	if err := a.do(ctx, http.MethodPost, gatewayapi.PathTokens, r, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Revoke revokes a token id (and so every token attenuated from it).
func (a *Admin) Revoke(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodPost, gatewayapi.PathTokens+"/"+url.PathEscape(id)+"/revoke", nil, nil)
}

// Approvals lists pending approvals.
func (a *Admin) Approvals(ctx context.Context) ([]Approval, error) {
	var l []Approval
	if err := a.do(ctx, http.MethodGet, gatewayapi.PathApprovals, nil, &l); err != nil {
		return nil, err
	}
	return l, nil
}

// Decide approves (approve true) or denies a pending call.
func (a *Admin) Decide(ctx context.Context, id string, approve bool) error {
	verb := "deny"
	if approve {
		verb = "approve"
	}
	return a.do(ctx, http.MethodPost, gatewayapi.PathApprovals+"/"+url.PathEscape(id)+"/"+verb, nil, nil)
}

// PendingTools lists changed tool definitions awaiting approval.
func (a *Admin) PendingTools(ctx context.Context) ([]PendingTool, error) {
	var l []PendingTool
	if err := a.do(ctx, http.MethodGet, gatewayapi.PathPendingTools, nil, &l); err != nil {
		return nil, err
	}
	return l, nil
}

// ApproveTool pins the changed definition of tool name, enabling the tool
// again, provided the pending definition still has the hex SHA-256 sha256
// (the NewSHA256 that was reviewed). If it changed since, the gateway
// refuses with reason gatewayapi.ReasonSHA256Mismatch and the tool stays
// disabled.
func (a *Admin) ApproveTool(ctx context.Context, name, sha256 string) error {
	return a.do(ctx, http.MethodPost, gatewayapi.PathTools+"/"+url.PathEscape(name)+"/approve", gatewayapi.ToolApproveRequest{SHA256: sha256}, nil)
}

// Info fetches /admin/v1/info.
func (a *Admin) Info(ctx context.Context) (*Info, error) {
	var i Info
	if err := a.do(ctx, http.MethodGet, gatewayapi.PathInfo, nil, &i); err != nil {
		return nil, err
	}
	return &i, nil
}
