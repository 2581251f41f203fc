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
func (v *Verified) ChainID() string { return chainID(v.Blocks) }

// ChainIDs returns the chain id of every prefix of the chain, shortest
// first: the root block alone, then with each caveat in turn; the last is
// ChainID. A token derived from another (by appending caveats) has the
// other's ChainID among its ChainIDs, which is what lets a revocation of
// one chain id reach every token derived from it.
func (v *Verified) ChainIDs() []string {
	ids := make([]string, len(v.Blocks))
	for i := range v.Blocks {
		ids[i] = chainID(v.Blocks[:i+1])
	}
	return ids
}

// DerivedFrom reports whether v was attenuated from parent: parent's chain
// is a strict prefix of v's. Both must come from Verify (or Parse, for a
// display that decides nothing), so their chains are what their MACs
// cover.
func (v *Verified) DerivedFrom(parent *Verified) bool {
	n := len(parent.Blocks)
	return len(v.Blocks) > n && chainID(v.Blocks[:n]) == parent.ChainID()
}

func chainID(blocks []Block) string {
	h := sha256.New()
	h.Write([]byte(chainTag))
	h.Write([]byte{byte(len(blocks))})
	for i := range blocks {
		if i == 0 {
			h.Write(encodeRoot(&blocks[0]))
		} else {
			h.Write(encodeCaveat(&blocks[i]))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
