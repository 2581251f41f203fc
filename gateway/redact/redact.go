// Package redact removes known secret values, and their common encodings,
// from text and JSON the gateway is about to send to a client.
//
// It catches a secret written out exactly or in any encoding Variants
// lists (base64, base32, hex, percent-encoding, JSON and \uXXXX escapes,
// HTML character references), and inside JSON after unescaping every
// string. It does not catch a secret split across strings or messages,
// written with a mix of encodings (some characters escaped, others not),
// compressed, encrypted, transformed otherwise or paraphrased: redaction is
// a last line of defence behind keeping secrets out of upstream output
// (docs/threat-model.md, "Redaction limits").
package redact

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html"
	"net/url"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Mask replaces every redacted occurrence.
const Mask = "[REDACTED]"

// MinLen is the shortest secret the gateway accepts. Redaction replaces a
// secret wherever its bytes occur, in values and in object keys alike; a
// secret of a few bytes also occurs inside ordinary words ("x" in "text")
// and redacting it would mangle protocol messages, while not redacting it
// would leak it. So a shorter secret is refused where it enters the gateway.
const MinLen = 8

// Redactor replaces a fixed set of secrets. The zero value and nil redact
// nothing. A Redactor is immutable and safe for concurrent use.
type Redactor struct {
	secrets  [][]byte
	variants []string // longest first
	m        *matcher
	r        *strings.Replacer // only when a variant is too short for m
}

// New returns a Redactor for the given secret values. Empty values are
// ignored.
func New(secrets ...[]byte) *Redactor {
	return build(nil, nil, secrets)
}

// With returns a Redactor that also redacts extra secrets. The variants of
// r's secrets are reused, not computed again.
func (r *Redactor) With(extra ...[]byte) *Redactor {
	if len(extra) == 0 {
		return r
	}
	if r == nil {
		return New(extra...)
	}
	return build(r.secrets, r.variants, extra)
}

// build returns a Redactor for secrets plus extra, where known are the
// variants of secrets.
func build(secrets [][]byte, known []string, extra [][]byte) *Redactor {
	set := make(map[string]bool, len(known)+40*len(extra))
	for _, v := range known {
		set[v] = true
	}
	kept := append([][]byte(nil), secrets...)
	for _, s := range extra {
		if len(s) == 0 {
			continue
		}
		kept = append(kept, append([]byte(nil), s...))
		for _, v := range Variants(s) {
			if v != "" {
				set[v] = true
			}
		}
	}
	if len(set) == 0 {
		return &Redactor{}
	}
	vs := make([]string, 0, len(set))
	for v := range set {
		vs = append(vs, v)
	}
	// Longest first so that a variant containing another is replaced whole
	// (both matchers pick the first matching variant at a position).
	sort.Slice(vs, func(i, j int) bool {
		if len(vs[i]) != len(vs[j]) {
			return len(vs[i]) > len(vs[j])
		}
		return vs[i] < vs[j]
	})
	r := &Redactor{secrets: kept, variants: vs, m: newMatcher(vs)}
	if r.m == nil {
		pairs := make([]string, 0, 2*len(vs))
		for _, v := range vs {
			pairs = append(pairs, v, Mask)
		}
		r.r = strings.NewReplacer(pairs...)
	}
	return r
}

// Variants returns the encodings of s that are redacted: s itself; base64
// (standard and URL alphabets, padded and not, and the part that is the
// same wherever s sits inside a longer base64 text); base32 (standard and
// extended-hex alphabets, padded and not, upper and lower case); hex (upper
// and lower case); percent-encoding (as url.QueryEscape and url.PathEscape
// write it, and every byte escaped, upper and lower case); JSON string
// escaping (with and without HTML-safe escapes, and escaped twice); every
// character as a \uXXXX escape (upper and lower case hex); and HTML
// character references (the named ones html.EscapeString and common
// encoders write, and every character as &#NN; or &#xNN;).
func Variants(s []byte) []string {
	str := string(s)
	out := []string{
		str,
		base64.StdEncoding.EncodeToString(s),
		base64.RawStdEncoding.EncodeToString(s),
		base64.URLEncoding.EncodeToString(s),
		base64.RawURLEncoding.EncodeToString(s),
		url.QueryEscape(str),
		url.PathEscape(str),
		hex.EncodeToString(s),
		strings.ToUpper(hex.EncodeToString(s)),
		percentAll(s, hexLower),
		percentAll(s, hexUpper),
	}
	// Inside a longer base64 text the secret starts at any byte offset;
	// for each offset modulo 3 the characters that encode only secret bytes
	// are fixed: those of its whole 3-byte groups at that alignment.
	for skip := range 3 {
		if whole := (len(s) - skip) / 3 * 3; whole >= 6 {
			core := s[skip : skip+whole]
			out = append(out, base64.RawStdEncoding.EncodeToString(core), base64.RawURLEncoding.EncodeToString(core))
		}
	}
	for _, enc := range []*base32.Encoding{base32.StdEncoding, base32.HexEncoding} {
		for _, e := range []*base32.Encoding{enc, enc.WithPadding(base32.NoPadding)} {
			b := e.EncodeToString(s)
			out = append(out, b, strings.ToLower(b))
		}
	}
	// JSON string escaping as encoding/json writes it (<, > and & as
	// \u003c…) and as most other encoders do (them kept).
	j, _ := json.Marshal(str)
	jstr := string(j[1 : len(j)-1])
	out = append(out, jstr)
	var plain strings.Builder
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	if enc.Encode(str) == nil {
		p := strings.TrimSuffix(plain.String(), "\n")
		out = append(out, p[1:len(p)-1])
	}
	// The JSON-escaped form of the JSON-escaped form: a secret inside a JSON
	// document carried in a JSON string.
	if jj, err := json.Marshal(jstr); err == nil {
		out = append(out, string(jj[1:len(jj)-1]))
	}
	// Character-by-character forms are defined on characters: only for
	// secrets in valid UTF-8.
	if utf8.Valid(s) {
		out = append(out,
			perRune(str, 6, func(b []byte, r rune) []byte { return appendUEscape(b, r, hexLower) }),
			perRune(str, 6, func(b []byte, r rune) []byte { return appendUEscape(b, r, hexUpper) }),
			perRune(str, 6, func(b []byte, r rune) []byte { return appendRef(b, "&#", r, 10, hexLower) }),
			perRune(str, 6, func(b []byte, r rune) []byte { return appendRef(b, "&#x", r, 16, hexLower) }),
			perRune(str, 6, func(b []byte, r rune) []byte { return appendRef(b, "&#x", r, 16, hexUpper) }),
			html.EscapeString(str),
			htmlNamed.Replace(str),
		)
	}
	return out
}

const (
	hexLower = "0123456789abcdef"
	hexUpper = "0123456789ABCDEF"
)

// htmlNamed writes the named references of the characters HTML escapes,
// where html.EscapeString writes numeric ones for the quotes.
var htmlNamed = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

// percentAll percent-encodes every byte of s.
func percentAll(s []byte, digits string) string {
	b := make([]byte, 0, 3*len(s))
	for _, c := range s {
		b = append(b, '%', digits[c>>4], digits[c&15])
	}
	return string(b)
}

// perRune returns s with every character written by f; each takes about
// per bytes.
func perRune(s string, per int, f func([]byte, rune) []byte) string {
	b := make([]byte, 0, per*len(s))
	for _, r := range s {
		b = f(b, r)
	}
	return string(b)
}

// appendRef appends the HTML character reference prefix, r in base (10 or
// 16) without leading zeros, and ";".
func appendRef(b []byte, prefix string, r rune, base rune, digits string) []byte {
	b = append(b, prefix...)
	var d [8]byte
	i := len(d)
	for {
		i--
		d[i] = digits[r%base]
		if r /= base; r == 0 {
			break
		}
	}
	return append(append(b, d[i:]...), ';')
}

// appendUEscape appends r as \uXXXX, or as a UTF-16 surrogate pair of two
// such escapes outside the Basic Multilingual Plane (JSON, JavaScript).
func appendUEscape(b []byte, r rune, digits string) []byte {
	u := func(v rune) {
		b = append(b, '\\', 'u', digits[v>>12&15], digits[v>>8&15], digits[v>>4&15], digits[v&15])
	}
	if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
		u(r1)
		u(r2)
	} else {
		u(r)
	}
	return b
}

// Empty reports whether r redacts nothing.
func (r *Redactor) Empty() bool { return r == nil || (r.m == nil && r.r == nil) }

// String returns s with every secret variant replaced by Mask.
func (r *Redactor) String(s string) string {
	if r.Empty() {
		return s
	}
	if r.m != nil {
		return r.m.replace(s)
	}
	return r.r.Replace(s)
}

// Contains reports whether s contains any secret variant.
func (r *Redactor) Contains(s string) bool {
	if r.Empty() {
		return false
	}
	if r.m != nil {
		return r.m.contains(s)
	}
	for _, v := range r.variants {
		if strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// Value redacts every string (and object key) inside a value decoded from
// JSON (map[string]any, []any, string, and scalars), returning a new value.
func (r *Redactor) Value(v any) any {
	if r.Empty() {
		return v
	}
	switch x := v.(type) {
	case string:
		return r.String(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[r.String(k)] = r.Value(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = r.Value(e)
		}
		return a
	default:
		return v
	}
}

// JSON redacts a JSON document: every string inside it, after decoding, so
// escapes cannot hide a secret. Input that is not valid JSON is redacted as
// text. It returns data itself when nothing needed redacting.
func (r *Redactor) JSON(data []byte) []byte {
	if r.Empty() {
		return data
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		return []byte(r.String(string(data)))
	}
	if !r.containsAnyString(v) {
		return data
	}
	out, err := json.Marshal(r.Value(v))
	if err != nil {
		return []byte(Mask)
	}
	return out
}

func (r *Redactor) containsAnyString(v any) bool {
	switch x := v.(type) {
	case string:
		return r.Contains(x)
	case map[string]any:
		for k, e := range x {
			if r.Contains(k) || r.containsAnyString(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if r.containsAnyString(e) {
				return true
			}
		}
	}
	return false
}
