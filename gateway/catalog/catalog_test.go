package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestExposedName(t *testing.T) {
	long := strings.Repeat("x", 80)
	cases := []struct {
		up, name, want string
	}{
		{"fs", "read_file", "fs_read_file"},
		{"fs", "read-file", "fs_read-file"},
		{"gh", "search.issues", "gh_search_issues_" + hash8("search.issues")},
		{"gh", "search issues", "gh_search_issues_" + hash8("search issues")},
		{"x", long, "x_" + long[:64-2-9] + "_" + hash8(long)},
		{"x", "é", "x____" + hash8("é")}, // two bytes, two underscores
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ExposedName(c.up, c.name)
			if got != c.want {
				t.Fatalf("ExposedName(%q, %q) = %q, want %q", c.up, c.name, got, c.want)
			}
			if !ValidName(got) {
				t.Fatalf("%q is not a valid name", got)
			}
		})
	}
}

func hash8(s string) string {
	n := ExposedName("", s) // "_"-prefixed, always suffixed for these inputs
	return n[len(n)-8:]
}

func TestResolveDropsCollisions(t *testing.T) {
	// "a_b" and "a_b" cannot both exist; collisions can only come from a
	// valid name equal to another's suffixed form, which we construct.
	suffixed := ExposedName("u", "a.b")
	orig := strings.TrimPrefix(suffixed, "u_")
	exp, dropped := Resolve("u", []string{"a.b", orig, "c"})
	if len(exp) != 2 || len(dropped) != 1 || dropped[0] != orig && dropped[0] != "a.b" {
		t.Fatalf("exposed %v dropped %v", exp, dropped)
	}
	seen := map[string]bool{}
	for _, e := range exp {
		if seen[e] {
			t.Fatalf("duplicate exposed name %s", e)
		}
		seen[e] = true
	}
}

func TestHashCanonical(t *testing.T) {
	a := &mcp.Tool{Name: "t", Description: "d", InputSchema: map[string]any{"type": "object", "properties": map[string]any{"b": 1, "a": 2}}}
	b := &mcp.Tool{Name: "t", Description: "d", InputSchema: map[string]any{"properties": map[string]any{"a": 2, "b": 1}, "type": "object"}}
	ha, _ := Hash(a)
	hb, _ := Hash(b)
	if ha != hb {
		t.Fatal("key order changed the hash")
	}
	changes := map[string]*mcp.Tool{
		"description": {Name: "t", Description: "d2", InputSchema: a.InputSchema},
		"schema":      {Name: "t", Description: "d", InputSchema: map[string]any{"type": "object"}},
		"annotations": {Name: "t", Description: "d", InputSchema: a.InputSchema, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		"output":      {Name: "t", Description: "d", InputSchema: a.InputSchema, OutputSchema: map[string]any{"type": "object"}},
		"title":       {Name: "t", Title: "T", Description: "d", InputSchema: a.InputSchema},
	}
	for name, c := range changes {
		t.Run(name, func(t *testing.T) {
			if h, _ := Hash(c); h == ha {
				t.Fatalf("changing the %s kept the hash", name)
			}
		})
	}
}

func TestPins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	p, err := OpenPins(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	v1 := &mcp.Tool{Name: "t", Description: "v1", InputSchema: map[string]any{"type": "object"}}
	v2 := &mcp.Tool{Name: "t", Description: "v2", InputSchema: map[string]any{"type": "object"}}
	steps := []struct {
		name string
		tool *mcp.Tool
		want State
		pend int
	}{
		{"first sight pins", v1, Pinned, 0},
		{"same again", v1, Pinned, 0},
		{"changed", v2, Changed, 1},
		{"still changed", v2, Changed, 1},
		{"back to pinned", v1, Pinned, 0},
		{"changed again", v2, Changed, 1},
	}
	for _, s := range steps {
		got, err := p.Check("u_t", s.tool)
		if err != nil || got != s.want || len(p.Pending()) != s.pend {
			t.Fatalf("%s: state %v err %v pending %d", s.name, got, err, len(p.Pending()))
		}
	}
	// Reopen: pins and pending survive.
	p2, err := OpenPins(path, nil)
	if err != nil || len(p2.Pending()) != 1 {
		t.Fatalf("reopen: %v %v", err, p2.Pending())
	}
	h1, _ := Hash(v1)
	h2, _ := Hash(v2)
	if err := p2.Approve("u_nope", h2); err != ErrNotPending {
		t.Fatalf("approving unknown: %v", err)
	}
	refused := []struct {
		name, sha256 string
		want         error
	}{
		{"no hash", "", ErrSHA256Required},
		{"not hex", strings.Repeat("z", 64), ErrSHA256Required},
		{"short", h2[:16], ErrSHA256Required},
		{"the pinned hash", h1, ErrSHA256Mismatch},
	}
	for _, r := range refused {
		if err := p2.Approve("u_t", r.sha256); !errors.Is(err, r.want) {
			t.Fatalf("approve with %s: %v, want %v", r.name, err, r.want)
		}
		if len(p2.Pending()) != 1 {
			t.Fatalf("approve with %s changed the pending list", r.name)
		}
	}
	if err := p2.Approve("u_t", strings.ToUpper(h2)); err != nil {
		t.Fatal(err)
	}
	if st, _ := p2.Check("u_t", v2); st != Pinned {
		t.Fatal("approved definition not pinned")
	}
	if st, _ := p2.Check("u_t", v1); st != Changed {
		t.Fatal("old definition accepted after approving the new one")
	}
}

func TestOpenPinsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPins(path, nil); err == nil {
		t.Fatal("corrupt pins file accepted")
	}
}
