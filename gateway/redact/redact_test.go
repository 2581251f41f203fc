package redact

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

const secret = `s3cr3t/va+lue"with=chars`

func TestString(t *testing.T) {
	r := New([]byte(secret))
	j, _ := json.Marshal(secret)
	cases := map[string]string{
		"raw":          "token " + secret + " end",
		"base64":       base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64url":    base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"query escape": "x?k=" + url.QueryEscape(secret),
		"path escape":  "/p/" + url.PathEscape(secret),
		"hex":          hex.EncodeToString([]byte(secret)),
		"json escaped": string(j),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			out := r.String(in)
			for _, v := range Variants([]byte(secret)) {
				if strings.Contains(out, v) {
					t.Fatalf("%q still contains variant %q", out, v)
				}
			}
			if !strings.Contains(out, Mask) {
				t.Fatalf("%q not masked", out)
			}
		})
	}
	if got := r.String("harmless"); got != "harmless" {
		t.Fatalf("changed harmless text: %q", got)
	}
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
	r := New([]byte("s3cr3t"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := r.JSON(data)
		var v any
		if json.Unmarshal(out, &v) == nil {
			b, _ := json.Marshal(v)
			if strings.Contains(string(b), "s3cr3t") {
				t.Fatalf("secret survived in %q", out)
			}
		}
	})
}
