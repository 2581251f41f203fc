package redact

import (
	"encoding/json"
	"strings"
	"testing"
)

// benchInput is a tool result of about 16 KiB of ordinary text with no
// secret in it: the common case, which must stay cheap.
func benchInput() (string, []byte) {
	var b strings.Builder
	for b.Len() < 16<<10 {
		b.WriteString("The quick brown fox jumps over the lazy dog 0123456789 abcdef ABCDEF; ")
	}
	doc, _ := json.Marshal(map[string]any{"content": []any{map[string]any{"type": "text", "text": b.String()}}})
	return b.String(), doc
}

func benchRedactor() *Redactor {
	return New([]byte("canary-8f2b6c1d9e0a4f7b"), []byte("sk-live-51HdWq0Ab3xYz9"), []byte(`p@ss"w<o>rd&1`))
}

func BenchmarkString(b *testing.B) {
	r := benchRedactor()
	s, _ := benchInput()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		r.String(s)
	}
}

func BenchmarkJSON(b *testing.B) {
	r := benchRedactor()
	_, doc := benchInput()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		r.JSON(doc)
	}
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		benchRedactor()
	}
}

// BenchmarkWith is the per-call cost when a session has layer-2
// credentials: the gateway's redactor plus one more secret.
func BenchmarkWith(b *testing.B) {
	r := benchRedactor()
	extra := []byte("layer2-user-token-9c1e")
	for b.Loop() {
		r.With(extra)
	}
}
