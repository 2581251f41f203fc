package captoken

// Limits on tokens. A token travels in an HTTP header on every request, so the
// caps keep it well under common header limits (8 KiB) and make sure the
// decoder never allocates in proportion to attacker-chosen lengths.
const (
	// MaxTokenSize caps the token string, prefix included.
	MaxTokenSize = 4096
	// MaxCaveats caps the attenuation blocks after the root block.
	MaxCaveats = 16
	// MaxPatterns caps the tool patterns of one block. It is also the
	// gateway's cap on a mint request (gateway.MaxMintPatterns), so that
	// the gateway never accepts a request it cannot mint.
	MaxPatterns = 32
	// MaxArgConstraints caps the argument constraints of one caveat.
	MaxArgConstraints = 16
	// MaxArgValues caps the allowed value patterns of one argument constraint.
	MaxArgValues = 16
	// MaxStringLen caps every string field (audience, subject, pattern,
	// argument name) in bytes.
	MaxStringLen = 256
)
