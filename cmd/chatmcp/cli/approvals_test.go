package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/gwclient"
)

func TestArgumentsSummary(t *testing.T) {
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"absent", ``, `{}`},
		{"null", `null`, `{}`},
		{"compacted", "{\n  \"a\": 1,\n  \"b\": \"hi\"\n}", `{"a":1,"b":"hi"}`},
		{"cut at the limit", `{"text":"` + strings.Repeat("x", 100) + `"}`, `{"text":"` + strings.Repeat("x", 10) + `…`},
		{"cut on a rune", `{"t":"` + strings.Repeat("é", 30) + `"}`, `{"t":"` + strings.Repeat("é", 13) + `…`},
		{"redaction marker kept", `{"key":"[REDACTED]"}`, `{"key":"[REDACTED]"}`},
		{"not JSON", `{"a":`, `(unreadable)`},
		{"terminal controls", "{\"a\":\"\u009b31m\"}", `{"a":"?31m"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := argumentsSummary(json.RawMessage(tc.raw), 20); got != tc.want {
				t.Fatalf("summary %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPrintApprovals: the plain listing says what the call is, who asked
// and when, and shows the (redacted) arguments, not only their hash.
func TestPrintApprovals(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	l := []gwclient.Approval{{
		ID: "0123456789abcdef0123456789abcdef", Principal: "alice", Tool: "notes_write_note",
		ArgumentsSHA256: strings.Repeat("ab", 32),
		Arguments:       json.RawMessage(`{"name":"todo","text":"` + strings.Repeat("buy milk ", 10) + `"}`),
		Created:         now.Add(-12 * time.Second), Expires: now.Add(108 * time.Second),
	}}
	var b bytes.Buffer
	if err := printApprovals(&b, l, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("listing:\n%s", b.String())
	}
	for _, want := range []string{"ID", "TOOL", "ASKED BY", "ASKED", "EXPIRES IN", "ARGUMENTS (REDACTED)"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header %q lacks %q", lines[0], want)
		}
	}
	for _, want := range []string{l[0].ID, "notes_write_note", "alice", "12s ago", "1m48s", `{"name":"todo","text":"buy milk buy milk`, "…"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	if strings.Contains(lines[1], "abab") {
		t.Errorf("row %q shows the hash instead of the arguments", lines[1])
	}
}
