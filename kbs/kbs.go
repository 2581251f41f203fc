// Package kbs is ChatMCP's key broker: a server that releases a secret only to
// a workload whose fresh attestation evidence satisfies that secret's policy,
// sealed with HPKE to a key the evidence binds, with envelope encryption at
// rest, an admin API, and the matching workload and admin clients. It links
// no gateway, relay or chat code.
//
// The handshake (after confidential-containers' RCAR) is documented with its
// message formats in docs/kbs.md.
package kbs

import (
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/binary"
	"fmt"
	"regexp"
	"time"

	"github.com/chatmcp/chatmcp/attest"
)

// API paths.
const (
	PathRequest      = "/kbs/v1/request"
	PathAttest       = "/kbs/v1/attest"
	PathAdminSecrets = "/kbs/v1/admin/secrets"
)

// Size limits for request bodies and stored values.
const (
	// MaxRequestBody caps POST /kbs/v1/request.
	MaxRequestBody = 4 << 10
	// MaxAttestBody caps POST /kbs/v1/attest: an evidence envelope plus a
	// little.
	MaxAttestBody = attest.MaxEnvelopeSize + 8<<10
	// MaxSecretSize caps a secret value.
	MaxSecretSize = 64 << 10
	// MaxAdminBody caps admin request bodies: a base64 secret and a policy.
	MaxAdminBody = MaxSecretSize*4/3 + attest.MaxPolicySize + 8<<10
	// NonceSize is the size of a challenge nonce.
	NonceSize = 32
	// MaxNameLen caps a secret name.
	MaxNameLen = 128
)

// DefaultNonceTTL is how long a challenge nonce can be redeemed.
const DefaultNonceTTL = 60 * time.Second

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ValidName reports whether name can name a secret: 1..128 characters of
// letters, digits, '.', '_' and '-', starting with a letter or digit.
func ValidName(name string) bool {
	return len(name) <= MaxNameLen && nameRE.MatchString(name)
}

// The HPKE suite of released secrets: DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, AES-256-GCM (RFC 9180 suite 0x0020/0x0001/0x0002). X25519
// because the ephemeral key is single-use and small enough to hash into
// report data cheaply; AES-256-GCM to match the at-rest AEAD.
func hpkeKEM() hpke.KEM   { return hpke.DHKEM(ecdh.X25519()) }
func hpkeKDF() hpke.KDF   { return hpke.HKDFSHA256() }
func hpkeAEAD() hpke.AEAD { return hpke.AES256GCM() }

// releaseInfo is the HPKE info of a release: the domain tag, the secret's
// name and version, and the nonce, length-prefixed so no two differ only in
// framing. A ciphertext sealed for one (name, version, nonce) fails to open
// as any other.
func releaseInfo(name string, version int, nonce []byte) []byte {
	return frame(attest.TagKBS+" release", []byte(name), binary.BigEndian.AppendUint64(nil, uint64(version)), nonce)
}

// secretAAD is the AES-GCM additional data for a stored secret value and
// its wrapped data key: a ciphertext moved to another name or version does
// not decrypt.
func secretAAD(name string, version int) []byte {
	return frame("chatmcp/kbs/v1 at-rest", []byte(name), binary.BigEndian.AppendUint64(nil, uint64(version)))
}

func frame(tag string, parts ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(tag)))
	b = append(b, tag...)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// ExpectedReportData is the report data a workload's evidence must carry in
// the handshake: attest.BindReportData(attest.TagKBS, nonce,
// SHA-256(HPKE public key)).
func ExpectedReportData(nonce, hpkePublicKey []byte) ([attest.ReportDataSize]byte, error) {
	h := sha256Sum(hpkePublicKey)
	return attest.BindReportData(attest.TagKBS, nonce, h[:])
}

// ChallengeRequest is the body of POST /kbs/v1/request.
type ChallengeRequest struct {
	Secret string     `json:"secret"`
	TEE    attest.TEE `json:"tee"`
}

// Challenge is the response to ChallengeRequest.
type Challenge struct {
	Nonce   []byte    `json:"nonce"`
	Expires time.Time `json:"expires"`
}

// AttestRequest is the body of POST /kbs/v1/attest.
type AttestRequest struct {
	Secret    string           `json:"secret"`
	Nonce     []byte           `json:"nonce"`
	Evidence  *attest.Evidence `json:"evidence"`
	PublicKey []byte           `json:"public_key"`
}

// Release is the response to an accepted AttestRequest: the secret value
// sealed with HPKE (mode base) to AttestRequest.PublicKey, info
// releaseInfo(Name, Version, Nonce).
type Release struct {
	Name       string `json:"name"`
	Version    int    `json:"version"`
	Enc        []byte `json:"enc"`
	Ciphertext []byte `json:"ciphertext"`
}

// PutRequest is the body of PUT /kbs/v1/admin/secrets/NAME.
type PutRequest struct {
	Value  []byte `json:"value"`
	Policy string `json:"policy"`
}

// PolicyRequest is the body of PUT /kbs/v1/admin/secrets/NAME/policy.
type PolicyRequest struct {
	Policy string `json:"policy"`
}

// SecretInfo describes a secret without its value.
type SecretInfo struct {
	Name         string    `json:"name"`
	Version      int       `json:"version"`
	Versions     []int     `json:"versions"`
	PolicySHA256 string    `json:"policy_sha256"`
	Revoked      bool      `json:"revoked"`
	Updated      time.Time `json:"updated"`
}

// SecretList is the response to GET /kbs/v1/admin/secrets.
type SecretList struct {
	Secrets []SecretInfo `json:"secrets"`
}

// ErrorBody is every error response: Reason is a short stable word scripts
// match on (see docs/kbs.md), Error a sentence for people.
type ErrorBody struct {
	Reason string `json:"reason"`
	Error  string `json:"error"`
}

// Error is a refusal by the KBS, as the client sees it.
type Error struct {
	Status int
	Reason string
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("kbs refused (%s): %s", e.Reason, e.Msg)
}
