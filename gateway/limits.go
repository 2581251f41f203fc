package gateway

import (
	"time"

	"github.com/chatmcp/chatmcp/captoken"
)

// Caps on what the gateway's HTTP API accepts. Where a value ends up in a
// capability token the cap is captoken's own, so that the gateway never
// accepts a request it then fails to mint.
const (
	// MaxAdminBody caps an admin request body.
	MaxAdminBody = 16 << 10
	// MaxTokenTTL caps the lifetime of a minted token.
	MaxTokenTTL = 30 * 24 * time.Hour
	// DefaultTokenTTL applies when a mint request names no ttl.
	DefaultTokenTTL = time.Hour
	// MaxMintPatterns caps the tool patterns of a mint request: the
	// patterns of one token block.
	MaxMintPatterns = captoken.MaxPatterns
	// MaxPatternLen caps one tool pattern, in bytes.
	MaxPatternLen = captoken.MaxStringLen
	// MaxSubjectLen caps a token's subject, in bytes.
	MaxSubjectLen = captoken.MaxStringLen
)
