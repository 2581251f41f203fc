package gwclient

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/gatewayapi"
)

// Member calls the gateway endpoints a person's client uses besides MCP:
// delivering an approval statement for a call held under a grant they
// named themselves approver of, and revoking a token derived from their
// own (an agent's grant). Neither takes the admin token.
type Member struct {
	// BaseURL is the gateway, https://host:port. Required.
	BaseURL string
	// HTTP is the client, whose transport must enforce a Trust (RA-TLS
	// under a policy, or pins). Required.
	HTTP *http.Client
}

func (m *Member) url(path string) string { return strings.TrimSuffix(m.BaseURL, "/") + path }

// PostStatement delivers a signed approval statement for its approval id.
// A refusal is an *HTTPError whose Reason names the failed check
// (gatewayapi.ReasonNotApprover when the call's grant names another
// approver, ReasonNotPending when it is decided or gone, …).
func (m *Member) PostStatement(ctx context.Context, st *agentapi.ApprovalStatement) error {
	if st == nil {
		return errors.New("gwclient: no statement")
	}
	return client(m.HTTP, true).Do(ctx, http.MethodPost, m.url(gatewayapi.PathStatements+"/"+st.ApprovalID+"/statement"), "", st, nil)
}

// RevokeDerived revokes derived, a token attenuated from token (which
// authenticates the request): derived and every token derived from it stop
// working, token does not.
func (m *Member) RevokeDerived(ctx context.Context, token, derived string) error {
	return client(m.HTTP, true).Do(ctx, http.MethodPost, m.url(gatewayapi.PathRevokeDerived), token, gatewayapi.RevokeDerivedRequest{Token: derived}, nil)
}
