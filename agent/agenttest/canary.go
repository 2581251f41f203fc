package agenttest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// AssertAbsent reports an error if canary is in any file under dir or in
// log. An empty dir or an empty log fails the test: a search of nothing
// proves nothing.
func AssertAbsent(t testing.TB, canary, dir string, log []byte) {
	t.Helper()
	n := 0
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		n++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("the canary is in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no files under %s: the search proves nothing", dir)
	}
	if len(log) == 0 || bytes.Contains(log, []byte(canary)) {
		t.Errorf("the canary is in the log (or the log is empty: %d bytes)", len(log))
	}
}
