// Package testvectors locates the real TEE evidence that tests read in place
// from ../shared/testvectors beside the repository root; tests skip, saying
// why, when it is absent. It never copies the vectors.
package testvectors

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the testvectors directory, or "" when it (or the module
// root above the working directory) cannot be found.
func Root() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	v := filepath.Join(dir, "..", "shared", "testvectors")
	if _, err := os.Stat(v); err != nil {
		return ""
	}
	return v
}

// Dir returns the vectors' subdirectory sub (e.g. "sevsnp"), skipping t
// when it is absent.
func Dir(t testing.TB, sub string) string {
	t.Helper()
	root := Root()
	if root == "" {
		t.Skip("real TEE test vectors not found at ../shared/testvectors beside the checkout")
	}
	d := filepath.Join(root, sub)
	if _, err := os.Stat(d); err != nil {
		t.Skipf("real TEE test vectors not found at %s: %v", d, err)
	}
	return d
}

// Read returns the file name in subdirectory sub, skipping t when the
// vectors are absent and failing it when the file cannot be read.
func Read(t testing.TB, sub, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(t, sub), name))
	if err != nil {
		t.Fatalf("reading test vector: %v", err)
	}
	return b
}
