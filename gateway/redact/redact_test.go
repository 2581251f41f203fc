package redact

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

const secret = `s3cr3t/va+lue"with=chars`

// encodings returns secret written in every form the package redacts, by
// name, each built with an encoder independent of Variants.
func encodings(secret string) map[string]string {
	b := []byte(secret)
	j, _ := json.Marshal(secret)
	var plain strings.Builder
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	enc.Encode(secret)
	each := func(f func(r rune) string) string {
		var out strings.Builder
		for _, r := range secret {
			out.WriteString(f(r))
		}
		return out.String()
	}
	uesc := func(upper bool) string {
		var out strings.Builder
		for _, u := range utf16.Encode([]rune(secret)) {
			h := fmt.Sprintf("%04x", u)
			if upper {
				h = strings.ToUpper(h)
			}
			out.WriteString(`\u` + h)
		}
		return out.String()
	}
	pct := func(upper bool) string {
		var out strings.Builder
		for _, c := range b {
			h := fmt.Sprintf("%%%02x", c)
			if upper {
				h = strings.ToUpper(h)
			}
			out.WriteString(h)
		}
		return out.String()
	}
	m := map[string]string{
		"raw":                      "token " + secret + " end",
		"base64 std":               base64.StdEncoding.EncodeToString(b),
		"base64 std unpadded":      base64.RawStdEncoding.EncodeToString(b),
		"base64url":                base64.URLEncoding.EncodeToString(b),
		"base64url unpadded":       base64.RawURLEncoding.EncodeToString(b),
		"base32 std":               base32.StdEncoding.EncodeToString(b),
		"base32 std unpadded":      base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b),
		"base32 std lower":         strings.ToLower(base32.StdEncoding.EncodeToString(b)),
		"base32 hex":               base32.HexEncoding.EncodeToString(b),
		"base32 hex unpadded":      base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b),
		"base32 hex lower":         strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b)),
		"hex":                      hex.EncodeToString(b),
		"hex upper":                strings.ToUpper(hex.EncodeToString(b)),
		"query escape":             "x?k=" + url.QueryEscape(secret),
		"path escape":              "/p/" + url.PathEscape(secret),
		"percent every byte":       pct(false),
		"percent every byte upper": pct(true),
		"json escaped":             string(j),
		"json escaped, html kept":  plain.String(),
		"json escaped twice":       mustJSON(string(j)),
		"\\u escapes":              uesc(false),
		"\\u escapes upper":        uesc(true),
		"html decimal refs":        each(func(r rune) string { return fmt.Sprintf("&#%d;", r) }),
		"html hex refs":            each(func(r rune) string { return fmt.Sprintf("&#x%x;", r) }),
		"html hex refs upper":      each(func(r rune) string { return fmt.Sprintf("&#x%X;", r) }),
		"html escaped":             "<p>" + html.EscapeString(secret) + "</p>",
	}
	// Inside a longer base64 text, at every offset.
	for pre := range 3 {
		blob := strings.Repeat("x", pre) + secret + "\n-- trailing data --"
		m[fmt.Sprintf("in base64 at offset %d", pre)] = base64.StdEncoding.EncodeToString([]byte(blob))
		m[fmt.Sprintf("in base64url at offset %d", pre)] = base64.RawURLEncoding.EncodeToString([]byte(blob))
	}
	return m
}

func TestString(t *testing.T) {
	for _, secret := range []string{secret, `p@ss<w>rd&'é😀`} {
		r := New([]byte(secret))
		for name, in := range encodings(secret) {
			t.Run(name, func(t *testing.T) {
				if !r.Contains(in) {
					t.Fatalf("Contains(%q) = false", in)
				}
				out := r.String(in)
				if !strings.Contains(out, Mask) {
					t.Fatalf("%q not masked: %q", in, out)
				}
				for _, v := range Variants([]byte(secret)) {
					if strings.Contains(out, v) {
						t.Fatalf("%q still contains variant %q", out, v)
					}
				}
			})
		}
	}
	r := New([]byte(secret))
	if got := r.String("harmless"); got != "harmless" {
		t.Fatalf("changed harmless text: %q", got)
	}
}

// FuzzMatcher: the matcher redacts exactly what a strings.Replacer of the
// variants, longest first, would.
func FuzzMatcher(f *testing.F) {
	f.Add([]byte("canary-8f2b6c1d"), "key=canary-8f2b6c1d and Y2FuYXJ5LThmMmI2YzFk")
	f.Add([]byte("aaaaaaaa"), "aaaaaaaaaaaaaaaaa")
	f.Add([]byte("abcdabcd"), "abcdabcdabcdabc &#97;&#98;")
	f.Fuzz(func(t *testing.T, secret []byte, text string) {
		r := New(secret)
		if r.Empty() || r.m == nil {
			return
		}
		pairs := make([]string, 0, 2*len(r.variants))
		for _, v := range r.variants {
			pairs = append(pairs, v, Mask)
		}
		want := strings.NewReplacer(pairs...).Replace(text)
		if got := r.String(text); got != want {
			t.Fatalf("String(%q) = %q, strings.Replacer %q", text, got, want)
		}
		present := slices.ContainsFunc(r.variants, func(v string) bool { return strings.Contains(text, v) })
		if r.Contains(text) != present {
			t.Fatalf("Contains(%q) = %v, want %v", text, !present, present)
		}
	})
}

func TestJSON(t *testing.T) {
	r := New([]byte(secret))
	doc := map[string]any{
		"a":       []any{"x " + secret},
		secret:    1,
		"escaped": "inner json: " + mustJSON(map[string]string{"k": secret}),
	}
	in, _ := json.Marshal(doc)
	out := r.JSON(in)
	var back map[string]any
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	flat, _ := json.Marshal(back)
	if strings.Contains(string(flat), "s3cr3t") {
		t.Fatalf("secret survived: %s", flat)
	}
	clean := []byte(`{"a":1}`)
	if got := r.JSON(clean); &got[0] != &clean[0] {
		t.Fatal("clean input was copied")
	}
	if got := string(r.JSON([]byte("not json " + secret))); strings.Contains(got, "s3cr3t") {
		t.Fatalf("invalid JSON not redacted as text: %q", got)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestEmpty(t *testing.T) {
	var nilR *Redactor
	for _, r := range []*Redactor{nilR, New(), New(nil, []byte{})} {
		if !r.Empty() || r.String("x") != "x" || r.Contains("x") {
			t.Fatal("empty redactor changed input")
		}
	}
	w := New().With([]byte("abcdefgh"))
	if w.String("xabcdefghx") != "x"+Mask+"x" {
		t.Fatal("With did not add the secret")
	}
}

func FuzzJSON(f *testing.F) {
	f.Add([]byte(`{"a":"s3cr3t"}`))
	f.Add([]byte(`["\u0073\u0033cr3t"]`))
	f.Add([]byte(`{"a":"&#115;&#51;&#99;&#114;&#51;&#116;"}`))
	f.Add([]byte(`{"a":"ONRWG4RTOQ======"}`))
	r := New([]byte("s3cr3t"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := r.JSON(data)
		var v any
		if json.Unmarshal(out, &v) == nil {
			b, _ := json.Marshal(v)
			if strings.Contains(string(b), "s3cr3t") {
				t.Fatalf("secret survived in %q", out)
			}
			if s := findString(v, r.Contains); s != "" {
				t.Fatalf("an encoding of the secret survived in %q", s)
			}
		}
	})
}

// findString returns the first string (or object key) in v for which bad
// holds, or "".
func findString(v any, bad func(string) bool) string {
	switch x := v.(type) {
	case string:
		if bad(x) {
			return x
		}
	case map[string]any:
		for k, e := range x {
			if bad(k) {
				return k
			}
			if s := findString(e, bad); s != "" {
				return s
			}
		}
	case []any:
		for _, e := range x {
			if s := findString(e, bad); s != "" {
				return s
			}
		}
	}
	return ""
}
