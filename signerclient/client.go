// Package signerclient is the client side of chatmcp-signer: an agent or
// a facilitator asking for signatures with a capability token, and an
// admin minting tokens, deciding approvals and releasing reservations. It
// links only the wire protocol (signerapi) and the HTTP edge; TLS trust
// (RA-TLS under an attestation policy) is the caller's http.Client.
package signerclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/signerapi"
)

// maxResponse caps what the client reads from the signer.
const maxResponse = 64 << 10

// Client asks a signer for signatures.
type Client struct {
	// BaseURL is the signer, e.g. "https://127.0.0.1:8446". Required.
	BaseURL string
	// Token is the capability token (cmt1.…). Required for signing.
	Token string
	// HTTP sends requests. If nil, http.DefaultClient (which cannot
	// verify RA-TLS: use one from ratls.ClientConfig).
	HTTP *http.Client
}

func (c *Client) do(ctx context.Context, method, path, token string, in, out any) error {
	ec := edge.Client{Service: "signer", HTTP: c.HTTP, MaxResponse: maxResponse}
	return ec.Do(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, token, in, out)
}

// Pubkey describes the signer: its Solana address and token audience.
func (c *Client) Pubkey(ctx context.Context) (*signerapi.Pubkey, error) {
	var out signerapi.Pubkey
	return &out, c.do(ctx, http.MethodGet, signerapi.PathPubkey, "", nil, &out)
}

// SignTransaction asks for the signer's signature on a wire transaction.
// A refusal is an *Error whose Reason is a signerapi rule (or
// ReasonMalformedTransaction).
func (c *Client) SignTransaction(ctx context.Context, wire []byte) (*signerapi.SignResponse, error) {
	var out signerapi.SignResponse
	return &out, c.do(ctx, http.MethodPost, signerapi.PathSign, c.Token, signerapi.SignRequest{Transaction: wire}, &out)
}

// SignMessage asks for a signature over an off-chain message.
func (c *Client) SignMessage(ctx context.Context, msg []byte) (string, error) {
	var out signerapi.SignMessageResponse
	err := c.do(ctx, http.MethodPost, signerapi.PathSignMessage, c.Token, signerapi.SignMessageRequest{Message: msg}, &out)
	return out.Signature, err
}

// Approvals lists the caller's own held requests (its token's chain), to
// pass on to its approver.
func (c *Client) Approvals(ctx context.Context) ([]signerapi.Approval, error) {
	var out []signerapi.Approval
	return out, c.do(ctx, http.MethodGet, signerapi.PathStatements, c.Token, nil, &out)
}

// PostStatement delivers an approver's signed decision (an encoded
// agentapi.ApprovalStatement) on held request id.
func (c *Client) PostStatement(ctx context.Context, id string, statement json.RawMessage) error {
	return c.do(ctx, http.MethodPost, signerapi.PathStatements+"/"+url.PathEscape(id)+"/statement", "", statement, nil)
}

// Admin drives the admin API with the admin token.
type Admin struct {
	Client
}

// Mint asks for a new capability token.
func (a *Admin) Mint(ctx context.Context, req signerapi.MintRequest) (*signerapi.MintResponse, error) {
	var out signerapi.MintResponse
	return &out, a.do(ctx, http.MethodPost, signerapi.PathTokens, a.Token, req, &out)
}

// Revoke revokes a token id (and every token attenuated from it) or a
// chain id.
func (a *Admin) Revoke(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodPost, signerapi.PathTokens+"/"+url.PathEscape(id)+"/revoke", a.Token, nil, nil)
}

// Approvals lists the requests waiting for a person.
func (a *Admin) Approvals(ctx context.Context) ([]signerapi.Approval, error) {
	var out []signerapi.Approval
	return out, a.do(ctx, http.MethodGet, signerapi.PathApprovals, a.Token, nil, &out)
}

// Decide approves or denies a waiting request.
func (a *Admin) Decide(ctx context.Context, id string, approve bool) error {
	d := "deny"
	if approve {
		d = "approve"
	}
	return a.do(ctx, http.MethodPost, signerapi.PathApprovals+"/"+url.PathEscape(id)+"/"+d, a.Token, nil, nil)
}

// Release releases the reservation of a signature that was never used.
func (a *Admin) Release(ctx context.Context, signature string) (*signerapi.Reservation, error) {
	var out signerapi.Reservation
	return &out, a.do(ctx, http.MethodPost, signerapi.PathRelease, a.Token, signerapi.ReleaseRequest{Signature: signature}, &out)
}

// Budget reports the overall window.
func (a *Admin) Budget(ctx context.Context) (*signerapi.Budget, error) {
	var out signerapi.Budget
	return &out, a.do(ctx, http.MethodGet, signerapi.PathBudget, a.Token, nil, &out)
}

// Error is a refusal by the signer (internal/edge's client error): Reason
// is a signerapi reason code.
type Error = edge.APIError

// ReasonOf returns the signer's reason code of err, if it is a refusal.
func ReasonOf(err error) (string, bool) { return edge.ReasonOf(err) }
