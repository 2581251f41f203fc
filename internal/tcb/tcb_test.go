package tcb

import (
	"flag"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
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

var update = flag.Bool("update", false, "rewrite testdata/<daemon>.deps from the import graph")

var (
	depsMu    sync.Mutex
	depsCache = map[string][]string{}
)

// linked lists the packages of this module that root (a module-relative
// directory) and everything under it link, module-relative and sorted, with
// `go list -deps`.
func linked(t *testing.T, root string) []string {
	t.Helper()
	depsMu.Lock()
	defer depsMu.Unlock()
	if d, ok := depsCache[root]; ok {
		return d
	}
	cmd := exec.Command("go", "list", "-deps", "./"+root+"/...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", root, err)
	}
	var deps []string
	for _, dep := range strings.Fields(string(out)) {
		if rel, ok := strings.CutPrefix(dep, module+"/"); ok {
			deps = append(deps, rel)
		}
	}
	slices.Sort(deps)
	depsCache[root] = deps
	return deps
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
			for _, dep := range r.Violations(linked(t, r.Root)) {
				t.Errorf("%s links %s/%s: %s", r.Root, module, dep, r.Why)
			}
		})
	}
}

// TestRulesCatchKBSServerInGateway checks the rules themselves: a gateway
// that linked the KBS server (kbs/server.go), its storage (kbs/storage.go,
// both in package kbs) or its daemon would fail TestImportRules, and the
// client side (kbsclient, kbsapi) is allowed.
func TestRulesCatchKBSServerInGateway(t *testing.T) {
	var caught []string
	for _, r := range Rules() {
		if r.Root == "cmd/chatmcp-gateway" {
			caught = append(caught, r.Violations([]string{"kbs", "kbs/daemon", "kbsapi", "kbsclient", "gateway", "attest"})...)
		}
	}
	if diff := cmp.Diff([]string{"kbs", "kbs/daemon"}, caught); diff != "" {
		t.Errorf("KBS packages the gateway rules forbid (-want +got):\n%s", diff)
	}
	got := linked(t, "cmd/chatmcp-gateway")
	for _, p := range []string{"kbsclient", "kbsapi"} {
		if !slices.Contains(got, p) {
			t.Errorf("chatmcp-gateway does not link %s: how does it fetch layer-1 secrets?", p)
		}
	}
}

// TestDaemonDeps compares the packages of this module that each daemon
// links with its committed list, testdata/<daemon>.deps. A package that is
// new to a daemon's image fails the test until the list is refreshed with
// `go test ./internal/tcb -update` and the diff reviewed.
func TestDaemonDeps(t *testing.T) {
	for _, d := range Daemons() {
		t.Run(d, func(t *testing.T) {
			got := linked(t, d)
			file := DepsFile(d)
			if *update {
				var b strings.Builder
				fmt.Fprintf(&b, "# Packages of %s that %s links, one a line.\n", module, d)
				b.WriteString("# A new line adds code to its trusted computing base: review it, then\n")
				b.WriteString("# refresh with: go test ./internal/tcb -update\n")
				for _, p := range got {
					b.WriteString(p + "\n")
				}
				if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (create it with go test ./internal/tcb -update)", err)
			}
			var want []string
			for _, line := range strings.Split(string(raw), "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					want = append(want, line)
				}
			}
			for _, p := range got {
				if !slices.Contains(want, p) {
					t.Errorf("%s links %s, which is not on %s: review that it belongs in this trusted computing base, then run go test ./internal/tcb -update", d, p, file)
				}
			}
			for _, p := range want {
				if !slices.Contains(got, p) {
					t.Errorf("%s no longer links %s, which is on %s: run go test ./internal/tcb -update", d, p, file)
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
