package relay

import (
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/relayapi"
)

// codes are the relay's reason codes for the refusals the HTTP edge makes
// itself (internal/edge): every refusal is an *edge.Error whose reason is
// one of the relayapi.Reason constants; clients branch on it, never on the
// message. Internal causes are logged, never sent.
var codes = edge.Codes{
	Malformed: relayapi.ReasonBadRequest,
	TooLarge:  relayapi.ReasonTooLarge,
	Internal:  relayapi.ReasonInternal,
}
