// Package gatewayapi holds what a ChatMCP gateway's HTTP API and its
// clients must agree on beyond the MCP protocol: the error body and its
// reason codes (docs/gateway.md). It has no dependencies.
package gatewayapi

// ErrorBody is every error response of the gateway's HTTP surface outside
// MCP itself (admin API, credential endpoints, token refusals): Reason is a
// short stable code callers branch on, Error a sentence for people.
type ErrorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

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
