// Package redact removes known secret values, and their simple encodings,
// from text and JSON the gateway is about to send to a client.
//
// It catches a secret written out exactly, base64-encoded on its own (with
// or without padding, standard or URL alphabet), percent-encoded, hex
// encoded, or JSON-escaped inside a string. It does not catch a secret
// split across strings, encoded inside a longer base64 blob at an offset
// not aligned to 3 bytes, compressed, encrypted or paraphrased: redaction is
// a last line of defence behind keeping secrets out of upstream output.
package redact

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
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
	variants []string
	r        *strings.Replacer
}

// New returns a Redactor for the given secret values. Empty values are
// ignored.
func New(secrets ...[]byte) *Redactor {
	set := map[string]bool{}
	var kept [][]byte
	for _, s := range secrets {
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
	// (strings.Replacer picks the first matching pair at a position).
	sort.Slice(vs, func(i, j int) bool {
		if len(vs[i]) != len(vs[j]) {
			return len(vs[i]) > len(vs[j])
		}
		return vs[i] < vs[j]
	})
	pairs := make([]string, 0, 2*len(vs))
	for _, v := range vs {
		pairs = append(pairs, v, Mask)
	}
	return &Redactor{secrets: kept, variants: vs, r: strings.NewReplacer(pairs...)}
}

// With returns a Redactor that also redacts extra secrets.
func (r *Redactor) With(extra ...[]byte) *Redactor {
	if len(extra) == 0 {
		return r
	}
	var all [][]byte
	if r != nil {
		all = append(all, r.secrets...)
	}
	return New(append(all, extra...)...)
}

// Variants returns the encodings of s that are redacted.
func Variants(s []byte) []string {
	str := string(s)
	j, _ := json.Marshal(str)
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
		string(j[1 : len(j)-1]),
	}
	// The JSON-escaped form of the JSON-escaped form: a secret inside a JSON
	// document carried in a JSON string.
	if jj, err := json.Marshal(string(j[1 : len(j)-1])); err == nil {
		out = append(out, string(jj[1:len(jj)-1]))
	}
	return out
}

// Empty reports whether r redacts nothing.
func (r *Redactor) Empty() bool { return r == nil || r.r == nil }

// String returns s with every secret variant replaced by Mask.
func (r *Redactor) String(s string) string {
	if r.Empty() {
		return s
	}
	return r.r.Replace(s)
}

// Contains reports whether s contains any secret variant.
func (r *Redactor) Contains(s string) bool {
	if r.Empty() {
		return false
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
