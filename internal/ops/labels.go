package ops

// Label values are fixed words, route patterns or tool names from a
// daemon's own catalogue; anything else is folded into one of these, so no
// client-chosen string (and so no secret, argument or message) becomes a
// label.
const (
	// Unknown stands for a tool name outside the catalogue.
	Unknown = "unknown"
	// Other stands for a decision or outcome outside the fixed words.
	Other = "other"
)

// Decisions of a tools/call or a KBS release.
const (
	Granted     = "granted"
	Denied      = "denied"
	AuditFailed = "audit_failed" // granted, but the audit log refused the entry: nothing happened
)

// Outcomes of a forwarded call and of an approval.
const (
	OK       = "ok"
	Error    = "error"
	Approved = "approved"
	TimedOut = "timed_out"
	Canceled = "cancelled"
)

// oneOf returns v if it is one of words, else Other.
func oneOf(v string, words ...string) string {
	for _, w := range words {
		if v == w {
			return v
		}
	}
	return Other
}

// maxToolLabel caps a tool label: catalogue names are short identifiers.
const maxToolLabel = 128

// toolLabel returns name if it looks like a catalogued tool name
// (letters, digits, '_', '-', '.', '/'; at most maxToolLabel bytes), else
// Unknown. Callers pass only names from their catalogue; this is a second
// line against a caller that forgets.
func toolLabel(name string) string {
	if name == "" || len(name) > maxToolLabel {
		return Unknown
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == '/') {
			return Unknown
		}
	}
	return name
}
