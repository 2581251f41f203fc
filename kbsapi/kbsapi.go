// Package kbsapi is the wire protocol of the ChatMCP key broker: paths,
// size limits, request and response types, refusal reasons and the HPKE
// suite and framing of a release. The server (package kbs) and its clients
// (package kbsclient) both import it, so neither re-declares a wire type,
// and a client links no server or storage code.
//
// The handshake and its message formats are documented in docs/kbs.md.
package kbsapi

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"regexp"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/internal/edge"
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

// HPKEKEM is the KEM of a release.
func HPKEKEM() hpke.KEM { return hpke.DHKEM(ecdh.X25519()) }

// HPKEKDF is the KDF of a release.
func HPKEKDF() hpke.KDF { return hpke.HKDFSHA256() }

// HPKEAEAD is the AEAD of a release.
func HPKEAEAD() hpke.AEAD { return hpke.AES256GCM() }

// EncSize is the size of a DHKEM(X25519) encapsulated key (Release.Enc).
const EncSize = 32

// ReleaseInfo is the HPKE info of a release: the domain tag, the secret's
// name and version, and the nonce, length-prefixed so no two differ only in
// framing. A ciphertext sealed for one (name, version, nonce) fails to open
// as any other.
func ReleaseInfo(name string, version int, nonce []byte) []byte {
	tag := attest.TagKBS + " release"
	b := binary.BigEndian.AppendUint16(nil, uint16(len(tag)))
	b = append(b, tag...)
	for _, p := range [][]byte{[]byte(name), binary.BigEndian.AppendUint64(nil, uint64(version)), nonce} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// ExpectedReportData is the report data a workload's evidence must carry in
// the handshake: attest.BindReportData(attest.TagKBS, nonce,
// SHA-256(HPKE public key)).
func ExpectedReportData(nonce, hpkePublicKey []byte) ([attest.ReportDataSize]byte, error) {
	h := sha256.Sum256(hpkePublicKey)
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
// ReleaseInfo(Name, Version, Nonce).
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
// match on (see docs/kbs.md), Error a sentence for people. It is the body
// every ChatMCP service answers errors with (internal/edge).
type ErrorBody = edge.ErrorBody

// Refusal reasons: stable words in ErrorBody.Reason, documented in
// docs/kbs.md. Attestation failures use the attest.Check words.
const (
	ReasonMalformed    = "malformed"
	ReasonTooLarge     = "too large"
	ReasonUnknownTEE   = "unknown tee"
	ReasonNonce        = "nonce"
	ReasonExpired      = "nonce expired"
	ReasonWrongSecret  = "wrong secret"
	ReasonWrongTEE     = "wrong tee"
	ReasonSimRefused   = "sim refused"
	ReasonNotFound     = "not found"
	ReasonRevoked      = "revoked"
	ReasonUnauthorized = "unauthorized"
	ReasonBadPolicy    = "bad policy"
	ReasonAudit        = "audit log unavailable"
	ReasonInternal     = "internal"
)
