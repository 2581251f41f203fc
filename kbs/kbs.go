// Package kbs is ChatMCP's key broker server: it releases a secret only to
// a workload whose fresh attestation evidence satisfies that secret's
// policy, sealed with HPKE to a key the evidence binds, with envelope
// encryption at rest and an admin API. Its wire protocol is package kbsapi
// and its clients are package kbsclient, so a workload links neither this
// package nor its storage. It links no gateway, relay or chat code.
//
// The handshake (after confidential-containers' RCAR) is documented with its
// message formats in docs/kbs.md.
package kbs

import (
	"encoding/binary"
	"time"
)

// DefaultNonceTTL is how long a challenge nonce can be redeemed.
const DefaultNonceTTL = 60 * time.Second

// secretAAD is the AES-GCM additional data for a stored secret value and
// its wrapped data key: a ciphertext moved to another name or version does
// not decrypt.
func secretAAD(name string, version int) []byte {
	return frame("chatmcp/kbs/v1 at-rest", []byte(name), binary.BigEndian.AppendUint64(nil, uint64(version)))
}

// frame length-prefixes a tag and parts, so no two inputs differ only in
// framing (the same framing as kbsapi.ReleaseInfo).
func frame(tag string, parts ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(tag)))
	b = append(b, tag...)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}
