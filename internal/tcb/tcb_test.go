package tcb

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/chatmcp/chatmcp"

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestImportRules lists each root's dependencies with `go list -deps` and
// fails when a forbidden package is linked.
func TestImportRules(t *testing.T) {
	root := repoRoot(t)
	for _, r := range Rules() {
		t.Run(r.Root, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(root, r.Root)); err != nil {
				t.Skipf("%s does not exist yet", r.Root)
			}
			cmd := exec.Command("go", "list", "-deps", "./"+r.Root+"/...")
			cmd.Dir = root
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", r.Root, err)
			}
			for _, dep := range strings.Fields(string(out)) {
				rel, ok := strings.CutPrefix(dep, module+"/")
				if !ok {
					continue
				}
				for _, f := range r.Forbidden {
					if rel == f || strings.HasPrefix(rel, f+"/") {
						t.Errorf("%s links %s: %s", r.Root, dep, r.Why)
					}
				}
			}
		})
	}
}

// TestPackageDocs fails for any package without a doc comment that starts
// with "Package <name>" (or "Command <name>" for mains).
func TestPackageDocs(t *testing.T) {
	root := repoRoot(t)
	cmd := exec.Command("go", "list", "-e", "-f", "{{.Dir}} {{.Name}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dir, name, _ := strings.Cut(line, " ")
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi os.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatalf("parsing %s: %v", dir, err)
		}
		found := false
		for _, p := range pkgs {
			for _, f := range p.Files {
				if f.Doc == nil {
					continue
				}
				doc := f.Doc.Text()
				if strings.HasPrefix(doc, "Package "+name+" ") || (name == "main" && strings.HasPrefix(doc, "Command ")) {
					found = true
				}
			}
		}
		if !found {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("package %s (%s) has no doc comment starting %q", name, rel, "Package "+name)
		}
	}
}
