// Package agentapi is the protocol of the ChatMCP assistant (chatmcp-agent):
// its effective configuration and the digest its evidence binds, the agent
// evidence a device publishes, the structured messages carried inside
// encrypted conversations (grants, approval requests, replies with signed
// receipts) and the approver's signed approval statement. The agent, the
// member's client and the gateway all import it, so none re-declares a type;
// it links no server and no client code.
//
// The protocol is documented in docs/agent.md.
package agentapi

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Domain tags: each use of a hash or signature has its own.
const (
	// TagAgent is the report-data tag of an agent's evidence.
	TagAgent = "chatmcp/agent/v1"
	// TagConfig is the hash tag of an effective configuration's digest.
	TagConfig = "chatmcp/agent/v1 config"
	// TagReceipt is the device-signature tag of a reply's receipt.
	TagReceipt = "chatmcp/agent/v1 receipt"
	// TagApproval is the device-signature tag of an approval statement.
	TagApproval = "chatmcp/approval/v1"
)

// Limits on what this package decodes and accepts.
const (
	// MaxNameLen caps the agent's name (the @name it answers to).
	MaxNameLen = 64
	// MaxURLLen caps a URL in the configuration or a message.
	MaxURLLen = 2048
	// MaxSystemPrompt caps the system prompt, in bytes.
	MaxSystemPrompt = 16 << 10
	// MaxModelName caps the model name.
	MaxModelName = 256
	// MaxEvidenceSize caps an encoded Evidence: an evidence envelope and a
	// configuration.
	MaxEvidenceSize = 256<<10 + 64<<10
	// MaxMessageSize caps an encoded structured Message (the envelope's
	// plaintext limit is larger; a structured message needs less).
	MaxMessageSize = 256 << 10
	// MaxTokenLen caps a grant's capability token string.
	MaxTokenLen = 16 << 10
	// MaxTools caps a grant's tool patterns.
	MaxTools = 64
	// MaxToolName caps a tool name or pattern.
	MaxToolName = 256
	// MaxArguments caps an approval request's arguments (canonical JSON):
	// escaped once more inside a message, they stay under MaxMessageSize.
	MaxArguments = 32 << 10
	// MaxReplyText caps a reply's text.
	MaxReplyText = 64 << 10
	// MaxReceiptItems caps each list in a receipt.
	MaxReceiptItems = 256
	// MaxStatementSize caps an encoded ApprovalStatement.
	MaxStatementSize = 16 << 10
	// MaxStatementLifetime caps how far in the future a statement may
	// expire: a decision is for a call waiting now.
	MaxStatementLifetime = 15 * 60 // seconds
)

// Limit ranges of the effective configuration (Limits).
const (
	MaxMaxTokens        = 1 << 16
	MaxToolCallsPerTurn = 64
	MaxTurnsPerMinute   = 6000
	MaxContextMessages  = 1000
)

// Check names the check a verification failed, stable for scripts and the
// wire (the reason code).
type Check string

const (
	CheckMalformed   Check = "malformed"   // not well formed or over a limit
	CheckSignature   Check = "signature"   // a signature does not verify
	CheckCertificate Check = "certificate" // a device certificate does not verify
	CheckApprover    Check = "approver"    // signed by a device of another wallet
	CheckExpired     Check = "expired"     // past its expiry, or expiring too far ahead
	CheckConfig      Check = "config"      // the configuration is invalid or not the one bound
	CheckEvidence    Check = "evidence"    // the evidence fails the policy or binds other keys
	CheckArguments   Check = "arguments"   // an approval request's arguments do not hash to its arguments_sha256
)

// Error is a failed check; Check says which.
type Error struct {
	Check Check
	Msg   string
	Err   error
}

func (e *Error) Error() string { return "agent " + string(e.Check) + ": " + e.Msg }

func (e *Error) Unwrap() error { return e.Err }

func errorf(check Check, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Check: check, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// CheckOf returns the Check of the first *Error in err's chain.
func CheckOf(err error) (Check, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Check, true
	}
	return "", false
}

// Digest is a SHA-256 hash, written as 64 lowercase hex characters.
type Digest [sha256.Size]byte

// Sum returns the SHA-256 of b.
func Sum(b []byte) Digest { return sha256.Sum256(b) }

// String returns the lowercase hex form.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is all zeros (unset).
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText implements encoding.TextMarshaler.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText accepts exactly 64 lowercase hex characters.
func (d *Digest) UnmarshalText(b []byte) error {
	p, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// ParseDigest parses 64 lowercase hex characters.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != 2*len(d) || !lowerHex(s) {
		return d, fmt.Errorf("digest %q is not 64 lowercase hex characters", truncate(s, 80))
	}
	hex.Decode(d[:], []byte(s))
	return d, nil
}

func lowerHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// validID reports whether s is a 32-lowercase-hex identifier (conversation,
// message, device and approval IDs).
func validID(s string) bool { return len(s) == 32 && lowerHex(s) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
