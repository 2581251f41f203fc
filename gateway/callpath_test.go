package gateway

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// maxCallPathFunc is the longest a function of the call path may be, in
// lines from its signature to its closing brace.
const maxCallPathFunc = 80

// callPathFiles are the files one tools/call runs through: the pipeline,
// its steps, what they use in this package, and the upstream connections.
var callPathFiles = []string{
	"http.go", "hostcheck.go", "protocol.go", "cancel.go", "pipeline.go",
	"call_authenticate.go", "call_resolve.go", "call_authorize.go", "call_confirm.go",
	"call_confirm_roundtrip.go", "call_confirm_statement.go", "call_pay.go",
	"call_audit.go", "call_forward.go", "call_redact.go",
	"args.go", "refusal.go", "routing.go", "backend.go", "sync.go",
	"upstream/pool.go", "upstream/upstream.go",
}

// TestCallPathFunctionLength keeps the call path readable top to bottom:
// no function in it is longer than maxCallPathFunc lines.
func TestCallPathFunctionLength(t *testing.T) {
	fset := token.NewFileSet()
	longest, where := 0, ""
	for _, name := range callPathFiles {
		f, err := parser.ParseFile(fset, filepath.FromSlash(name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
			if n > maxCallPathFunc {
				t.Errorf("%s: %s is %d lines, more than %d", name, fn.Name.Name, n, maxCallPathFunc)
			}
			if n > longest {
				longest, where = n, name+": "+fn.Name.Name
			}
		}
	}
	t.Logf("longest function in the call path: %s, %d lines", where, longest)
}
