// Package gatewayapi is the wire protocol of a ChatMCP gateway's HTTP
// surface beyond the MCP protocol: paths, the JSON bodies of the admin API
// and the layer-2 credential endpoints, the credential protocol's domain
// tags, and the error body with its reason codes (docs/gateway.md). The
// gateway (package gateway) and its clients (package gwclient, the CLI)
// both import it, so neither re-declares a wire type; the golden file
// testdata/wire.txtar pins every body's encoding.
package gatewayapi

import (
	"encoding/json"
	"time"

	"github.com/chatmcp/chatmcp/internal/edge"
)

// Paths of the HTTP surface. Admin paths take the bearer admin token; the
// MCP endpoint and PathCredentials a capability token.
const (
	PathMCP           = "/mcp"
	PathAttestation   = "/.well-known/chatmcp/attestation"
	PathCredentialKey = "/.well-known/chatmcp/credential-key" // GET: CredentialKey
	PathCredentials   = "/v1/credentials"                     // POST SealedCredentials, Mcp-Session-Id: 204
	PathAdmin         = "/admin/v1/"
	PathTokens        = "/admin/v1/tokens"        // POST MintRequest: MintResponse; POST /{id}/revoke: 204
	PathApprovals     = "/admin/v1/approvals"     // GET: []Approval; POST /{id}/approve, /{id}/deny: 204
	PathPendingTools  = "/admin/v1/tools/pending" // GET: []PendingTool
	PathTools         = "/admin/v1/tools"         // POST /{name}/approve ToolApproveRequest: 204
	PathInfo          = "/admin/v1/info"          // GET: Info
	// PathStatements takes an approver's decision on a held call: POST
	// /{id}/statement with an agentapi.ApprovalStatement as the body, no
	// bearer (the statement is signed): 204. Only a statement signed for
	// the approver the held call's token names is accepted.
	PathStatements = "/v1/approvals" // POST /{id}/statement agentapi.ApprovalStatement: 204
	// PathRevokeDerived revokes a token derived from the bearer's own
	// capability token (a grant its holder delegated): 204.
	PathRevokeDerived = "/v1/tokens/revoke" // POST RevokeDerivedRequest
)

// MaxStatementBody caps a POST /v1/approvals/{id}/statement body
// (agentapi.MaxStatementSize).
const MaxStatementBody = 16 << 10

// RevokeDerivedRequest is the body of POST /v1/tokens/revoke: a token
// attenuated from the bearer's. The gateway revokes its chain (that token
// and every token derived from it), never the bearer's own.
type RevokeDerivedRequest struct {
	Token string `json:"token"`
}

// The layer-2 credential protocol. Each use has its own domain tag so no
// signature or ciphertext can be replayed in another role.
const (
	// CredentialKEM names the only KEM of a credential key.
	CredentialKEM = "DHKEM(X25519, HKDF-SHA256)"
	// CredentialKeyContext prefixes the public key in the RA-TLS key's
	// signature over it: ECDSA over SHA-256(context || public key).
	CredentialKeyContext = "chatmcp/gateway/credential-key/v1\x00"
	// CredentialInfoContext prefixes the principal id (the token's chain
	// id) in the HPKE info, binding a sealed body to the exact token it was
	// sealed for (v1 bound the root token id, shared by attenuations).
	CredentialInfoContext = "chatmcp/gateway/credential/v2\x00"
	// MaxCredentialsBody caps a POST /v1/credentials body.
	MaxCredentialsBody = 64 << 10
)

// MintRequest is the body of POST /admin/v1/tokens.
type MintRequest struct {
	Tools []string `json:"tools"`
	// TTL is a Go duration string; empty means the gateway's default (1h).
	TTL     string `json:"ttl,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// MintResponse is a new token.
type MintResponse struct {
	ID      string    `json:"id"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// Approval is a tools/call waiting for a person (GET /admin/v1/approvals).
// Arguments are redacted.
type Approval struct {
	ID              string          `json:"id"`
	Principal       string          `json:"principal"`
	Tool            string          `json:"tool"`
	ArgumentsSHA256 string          `json:"arguments_sha256"`
	Arguments       json.RawMessage `json:"arguments,omitempty"`
	Created         time.Time       `json:"created"`
	Expires         time.Time       `json:"expires"`
	// Approver is the principal (a wallet address) the caller's token
	// names as the approver of its held calls; besides the admin, only a
	// statement signed for it decides. Empty when the token names none.
	Approver string `json:"approver,omitempty"`
}

// PendingTool is a tool whose definition changed since it was pinned (GET
// /admin/v1/tools/pending).
type PendingTool struct {
	Name      string `json:"name"`
	OldSHA256 string `json:"old_sha256"`
	// OldDefinition is the pinned canonical definition (the one with
	// OldSHA256), for a diff against Definition. Absent when the gateway's
	// pins file did not record it (written before definitions were kept):
	// then only the hash is known.
	OldDefinition json.RawMessage `json:"old_definition,omitempty"`
	// NewSHA256 is the hash of Definition, which a ToolApproveRequest must
	// name.
	NewSHA256  string          `json:"new_sha256"`
	Definition json.RawMessage `json:"definition"`
	Seen       time.Time       `json:"seen"`
}

// ToolApproveRequest is the body of POST /admin/v1/tools/{name}/approve:
// the new_sha256 of the pending definition the operator reviewed.
type ToolApproveRequest struct {
	SHA256 string `json:"sha256"`
}

// Info is the body of GET /admin/v1/info: the gateway's self-description.
type Info struct {
	Audience string   `json:"audience"`
	Tools    []string `json:"tools"`
	// Dev is true for a development gateway on simulated evidence.
	Dev bool `json:"dev,omitzero"`
}

// CredentialKey is the body of GET /.well-known/chatmcp/credential-key:
// the gateway's HPKE credential key, signed by its RA-TLS certificate key
// (see CredentialKeyContext). []byte travels as standard base64.
type CredentialKey struct {
	KEM       string `json:"kem"`
	PublicKey []byte `json:"public_key"`
	Signature []byte `json:"signature"`
}

// SealedCredentials is the body of POST /v1/credentials: a JSON object
// {"NAME": "VALUE", ...} sealed with HPKE (base mode, CredentialKEM,
// HKDF-SHA256, AES-256-GCM, info CredentialInfoContext || principal id).
type SealedCredentials struct {
	Enc        []byte `json:"enc"`
	Ciphertext []byte `json:"ciphertext"`
}

// ErrorBody is every error response of the gateway's HTTP surface outside
// MCP itself (admin API, credential endpoints, token refusals): Reason is a
// short stable code callers branch on, Error a sentence for people. It is
// the body every ChatMCP service answers errors with (internal/edge).
type ErrorBody = edge.ErrorBody

// Reason codes. They are part of the API: never reword one.
const (
	// ReasonUnauthorized: a missing or refused admin or capability token (401).
	ReasonUnauthorized = "unauthorized"
	// ReasonForbidden: the token is valid but may not do this (403).
	ReasonForbidden = "forbidden"
	// ReasonNotFound: no such endpoint, approval or token (404).
	ReasonNotFound = "not found"
	// ReasonMethod: the endpoint does not take this HTTP method (405).
	ReasonMethod = "method not allowed"
	// ReasonTooLarge: the body exceeds the endpoint's cap (413, or 400 for
	// credentials).
	ReasonTooLarge = "too large"
	// ReasonMalformed: the body is not strict JSON of the expected shape
	// (400).
	ReasonMalformed = "malformed"
	// ReasonTooManyPatterns: a mint request names more tool patterns than
	// a token may hold, captoken.MaxPatterns (400).
	ReasonTooManyPatterns = "too many patterns"
	// ReasonBadPattern: a tool pattern is empty, too long or not a
	// path.Match glob (400).
	ReasonBadPattern = "bad pattern"
	// ReasonBadTTL: a token lifetime that does not parse or is out of range
	// (400).
	ReasonBadTTL = "bad ttl"
	// ReasonBadSubject: a token subject that is too long (400).
	ReasonBadSubject = "bad subject"
	// ReasonBadID: a token id that is not 32 hex digits (400).
	ReasonBadID = "bad id"
	// ReasonNotPending: an approval that is unknown, already decided or
	// timed out, or a tool with no changed definition pending (404).
	ReasonNotPending = "not pending"
	// ReasonSHA256Required: a tool approval that names no definition hash
	// (400).
	ReasonSHA256Required = "sha256 required"
	// ReasonSHA256Mismatch: the pending definition of a tool no longer has
	// the hash the approval names: it changed after it was reviewed (409).
	ReasonSHA256Mismatch = "sha256 mismatch"
	// ReasonUnknownSession: the Mcp-Session-Id is missing or unknown (400).
	ReasonUnknownSession = "unknown session"
	// ReasonCredentialsRejected: sealed credentials that do not open for
	// the caller's token, or are malformed (400).
	ReasonCredentialsRejected = "credentials rejected"
	// ReasonBadRequest: any other invalid request (400).
	ReasonBadRequest = "bad request"
	// ReasonUnavailable: the gateway cannot serve this now (certificate or
	// signing key unavailable; 500).
	ReasonUnavailable = "unavailable"
	// ReasonBadStatement: an approval statement that is malformed, for
	// another approval id, or whose signature or device certificate does
	// not verify (400).
	ReasonBadStatement = "bad statement"
	// ReasonStatementExpired: an approval statement past its expiry, or
	// expiring too far ahead (403).
	ReasonStatementExpired = "statement expired"
	// ReasonNoApprover: the held call's token names no approver: only the
	// admin decides it (403).
	ReasonNoApprover = "no approver"
	// ReasonNotApprover: the statement is signed for another wallet than
	// the approver the held call's token names (another member, the agent
	// itself) (403).
	ReasonNotApprover = "not approver"
	// ReasonArgumentsMismatch: the statement's arguments hash is not the
	// held call's (409).
	ReasonArgumentsMismatch = "arguments mismatch"
	// ReasonNotDerived: the token to revoke is not derived from the
	// bearer's (403).
	ReasonNotDerived = "not derived"
	// ReasonHostNotAllowed: the request's Host names neither the listen
	// address nor an allowed_hosts entry (403; DNS rebinding).
	ReasonHostNotAllowed = "host not allowed"
	// ReasonOriginNotAllowed: the request's Origin names neither the listen
	// address nor an allowed_hosts entry (403; DNS rebinding).
	ReasonOriginNotAllowed = "origin not allowed"
	// ReasonInternal: the request was valid and failed inside the gateway
	// (500); nothing was changed unless the message says so.
	ReasonInternal = "internal"
)

// ReasonForStatus is the reason code of an error answered with status
// when no more specific code applies.
func ReasonForStatus(status int) string {
	switch status {
	case 400:
		return ReasonBadRequest
	case 401:
		return ReasonUnauthorized
	case 403:
		return ReasonForbidden
	case 404:
		return ReasonNotFound
	case 405:
		return ReasonMethod
	case 413:
		return ReasonTooLarge
	}
	if status >= 500 {
		return ReasonInternal
	}
	return ReasonBadRequest
}
