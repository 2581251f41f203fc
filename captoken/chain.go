package captoken

import (
	"crypto/sha256"
	"encoding/hex"
)

// chainTag is the domain tag of chain ids.
const chainTag = "chatmcp/captoken/chain/v1\x00"

// ChainID identifies this exact token chain, its root block and every
// caveat, as 64 hex digits. A token and each token attenuated from it share
// ID (revoking the root revokes them all) but have different chain ids, so
// a verifier can tell the holders apart (the gateway binds MCP sessions and
// layer-2 credentials to it). Each chain has one id, because each token has
// one byte form. It is SHA-256 over a domain tag, the number of blocks and
// their canonical bytes (self-delimiting, so the concatenation is
// unambiguous); it does not involve the token's MAC, so it may be shown.
func (v *Verified) ChainID() string {
	h := sha256.New()
	h.Write([]byte(chainTag))
	h.Write([]byte{byte(len(v.Blocks))})
	for i := range v.Blocks {
		if i == 0 {
			h.Write(encodeRoot(&v.Blocks[0]))
		} else {
			h.Write(encodeCaveat(&v.Blocks[i]))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
