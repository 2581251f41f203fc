// Package audit is an append-only, hash-chained JSON Lines log with
// checkpoints signed by the log's Ed25519 key, and its verifier; it knows no
// server and never sees secret values (callers put only names, versions,
// digests and decisions in an Entry).
//
// # Format
//
// Each line is one JSON object followed by "\n":
//
//	{"seq":N,"time":"RFC 3339","prev":"hex SHA-256 of line N-1's bytes","type":"…",…}
//
// Line 1 (seq 0) is the header: type "header", prev "", format
// "chatmcp/audit/v1" and key, the hex Ed25519 public key that signs the
// checkpoints. A checkpoint line (type "checkpoint") carries sig, an Ed25519
// signature over the domain tag "chatmcp/audit/checkpoint/v1", its own seq
// and its prev: because prev hashes the previous line, which hashes the one
// before, a checkpoint commits to every byte above it. Type "note" records
// what the log itself did (for example truncating a torn final line after a
// crash). Every other type is a caller's Entry.
//
// Altering, removing, reordering or inserting a line breaks the chain at the
// first affected line; rewriting the whole chain needs the signing key, which
// a verifier given the trusted public key (VerifyOptions.Key) detects.
// Cutting whole lines off the end is detected only when the cut leaves the
// log ending in something other than a checkpoint, which is why, by default,
// a checkpoint follows every entry and a closed log ends with one; a cut at a
// checkpoint boundary can only be detected against an external anchor
// (VerifyOptions.Head).
package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Format is the header's format field.
const Format = "chatmcp/audit/v1"

// Line types written by the log itself. Callers may not Append them.
const (
	TypeHeader     = "header"
	TypeCheckpoint = "checkpoint"
	TypeNote       = "note"
)

// MaxLineSize caps one line (without its newline). Entries are small
// metadata; a longer line is malformed.
const MaxLineSize = 64 << 10

// checkpointTag is the domain tag of checkpoint signatures, so that the log
// key's signature over a checkpoint can never be taken for anything else.
const checkpointTag = "chatmcp/audit/checkpoint/v1"

// Entry is what a caller records. It is typed so that no free-form map can
// carry a secret value by accident: fill only names, versions, digests and
// decisions. Empty fields are omitted from the line.
type Entry struct {
	// Type classifies the entry, e.g. "kbs.release" or "gateway.call".
	// Required; must not be one of the log's own types.
	Type string `json:"type"`
	// Actor is who acted: "admin", a client address, a service name.
	Actor string `json:"actor,omitempty"`
	// Principal is the authenticated identity on whose behalf, if any.
	Principal string `json:"principal,omitempty"`
	// Action is what was attempted, e.g. "secret.put" or "release".
	Action string `json:"action,omitempty"`
	// Decision is "granted", "denied", "ok" or "error".
	Decision string `json:"decision,omitempty"`
	// Reason says why (for a denial, the failed check).
	Reason string `json:"reason,omitempty"`
	// TEE is the attested TEE type.
	TEE string `json:"tee,omitempty"`
	// Measurement is the attested measurement, hex.
	Measurement string `json:"measurement,omitempty"`
	// Secret names a secret (never its value).
	Secret string `json:"secret,omitempty"`
	// Version is a secret or policy version.
	Version int `json:"version,omitempty"`
	// PolicySHA256 is the hex digest of a policy.
	PolicySHA256 string `json:"policy_sha256,omitempty"`
	// Tool names an MCP tool.
	Tool string `json:"tool,omitempty"`
	// Upstream names an upstream server.
	Upstream string `json:"upstream,omitempty"`
	// DurationMS is how long the action took, in milliseconds.
	DurationMS float64 `json:"duration_ms,omitempty"`
	// ArgsSHA256 is the hex digest of call arguments.
	ArgsSHA256 string `json:"args_sha256,omitempty"`
	// Arguments are call arguments in clear, set only where a deployment
	// opted in (the gateway's audit_arguments) and redacted of secret
	// values by the caller. Usually empty: the digest is enough to match a
	// call against a client's own record.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	// Request identifies the request, for correlation with other logs.
	Request string `json:"request,omitempty"`
	// TokenChain identifies the exact capability token used (its root and
	// caveats) where Actor names only the root token.
	TokenChain string `json:"token_chain,omitempty"`
	// Count is how many events an aggregated entry stands for (such as
	// refusals suppressed by rate limiting); zero for one event.
	Count int `json:"count,omitempty"`
	// Payment is the transaction signature of the payment the action was
	// paid with (an x402 settlement), if any.
	Payment string `json:"payment,omitempty"`
}

// line is one JSON object of the log.
type line struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Prev   string    `json:"prev"`
	Format string    `json:"format,omitempty"`
	Key    string    `json:"key,omitempty"`
	Sig    string    `json:"sig,omitempty"`
	Note   string    `json:"note,omitempty"`
	Entry
}

// hashLine is the chain hash of one line's bytes (without the newline).
func hashLine(b []byte) [sha256.Size]byte { return sha256.Sum256(b) }

// checkpointMessage is what a checkpoint signs: the tag, its seq and the
// hash of the line before it.
func checkpointMessage(seq uint64, prev [sha256.Size]byte) []byte {
	m := make([]byte, 0, len(checkpointTag)+1+8+sha256.Size)
	m = append(m, checkpointTag...)
	m = append(m, 0)
	m = binary.BigEndian.AppendUint64(m, seq)
	return append(m, prev[:]...)
}

// Head names the last line of a log: its seq and chain hash. Kept outside
// the log, it anchors a later verification against truncation.
type Head struct {
	Seq  uint64
	Hash [sha256.Size]byte
}

func (h Head) String() string { return fmt.Sprintf("%d:%s", h.Seq, hex.EncodeToString(h.Hash[:])) }

func reservedType(t string) bool {
	return t == TypeHeader || t == TypeCheckpoint || t == TypeNote
}

func publicKeyHex(k ed25519.PublicKey) string { return hex.EncodeToString(k) }
