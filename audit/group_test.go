package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentAppendsGroupCommit appends from many goroutines at once and
// checks that every entry is in the log exactly once, the chain verifies,
// and the log ends sealed.
func TestConcurrentAppendsGroupCommit(t *testing.T) {
	key := testKey(1)
	l, path := openLog(t, &Options{Signer: key})
	const workers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				errs <- l.Append(context.Background(), Entry{Type: "test", Reason: fmt.Sprintf("w%d-%d", w, i)})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, err := Inspect(f, &VerifyOptions{Key: key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if sum.Entries != workers*each {
		t.Errorf("log holds %d entries, want %d", sum.Entries, workers*each)
	}
	if sum.Unsealed != 0 {
		t.Errorf("log ends with %d unsealed lines, want 0", sum.Unsealed)
	}
	if sum.Checkpoints < 1 || sum.Checkpoints > sum.Entries {
		t.Errorf("%d checkpoints for %d entries", sum.Checkpoints, sum.Entries)
	}
	seen := map[string]bool{}
	for _, ln := range readLines(t, path) {
		var e struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(ln, &e); err != nil {
			t.Fatal(err)
		}
		if e.Reason != "" && seen[e.Reason] {
			t.Errorf("entry %s written twice", e.Reason)
		}
		seen[e.Reason] = true
	}
}

// BenchmarkAppendSerial is the baseline: one appender, so every entry pays
// its own write, signature and fsync.
func BenchmarkAppendSerial(b *testing.B) {
	l, err := Open(context.Background(), filepath.Join(b.TempDir(), "audit.jsonl"), &Options{Signer: testKey(1)})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for b.Loop() {
		if err := l.Append(context.Background(), Entry{Type: "test"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel has 8 appenders per CPU sharing writes through
// group commit; compare ns/op with BenchmarkAppendSerial.
func BenchmarkAppendParallel(b *testing.B) {
	l, err := Open(context.Background(), filepath.Join(b.TempDir(), "audit.jsonl"), &Options{Signer: testKey(1)})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(context.Background(), Entry{Type: "test"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestOverlongEntryFailsAlone: an entry too long for a line is refused
// before it joins a group commit, so the entries committed with it are
// written; the log stays usable.
func TestOverlongEntryFailsAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := Open(context.Background(), path, &Options{Signer: testKey(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := Entry{Type: "x", Reason: fmt.Sprint(i)}
			if i%10 == 0 {
				e.Arguments = json.RawMessage(`"` + strings.Repeat("<", MaxLineSize/6) + `"`)
			}
			errs[i] = l.Append(context.Background(), e)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%10 == 0) != (err != nil) {
			t.Errorf("append %d: %v", i, err)
		}
	}
	if err := l.Append(context.Background(), Entry{Type: "x", Arguments: json.RawMessage(`{`)}); err == nil {
		t.Error("entry with invalid arguments accepted")
	}
	if err := l.Append(context.Background(), Entry{Type: "x", Reason: "after"}); err != nil {
		t.Fatalf("log unusable after refused entries: %v", err)
	}
}
