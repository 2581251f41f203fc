package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestStage: a staged entry is in the file (readable by another reader)
// when Stage returns, before durable is called; durable returns nil once
// synced; many concurrent stages verify as one chain; a durable waited
// after Close still succeeds (Close synced everything).
func TestStage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	key := testKey(2)
	l, err := Open(context.Background(), path, &Options{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	durable, err := l.Stage(context.Background(), Entry{Type: "test", Reason: "first"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"reason":"first"`)) {
		t.Fatalf("staged entry not written before durable: %s", b)
	}
	if err := durable(); err != nil {
		t.Fatalf("durable: %v", err)
	}
	if err := durable(); err != nil {
		t.Fatalf("durable called twice: %v", err)
	}

	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	waits := make(chan func() error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := l.Stage(context.Background(), Entry{Type: "test", Reason: fmt.Sprintf("c%d", i)})
			if err != nil {
				errs <- err
				return
			}
			waits <- d
		}()
	}
	wg.Wait()
	close(errs)
	close(waits)
	for err := range errs {
		t.Fatalf("Stage: %v", err)
	}
	late := []func() error{}
	for d := range waits {
		late = append(late, d)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range late {
		if err := d(); err != nil {
			t.Fatalf("durable after Close: %v", err)
		}
	}
	if _, err := l.Stage(context.Background(), Entry{Type: "test"}); err == nil {
		t.Fatal("Stage on a closed log succeeded")
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
	if sum.Entries != n+1 {
		t.Fatalf("log holds %d entries, want %d", sum.Entries, n+1)
	}
}

// TestStageRejectsReserved: Stage refuses what Append refuses, before
// writing anything.
func TestStageRejectsReserved(t *testing.T) {
	l, err := Open(context.Background(), filepath.Join(t.TempDir(), "a.jsonl"), &Options{Signer: testKey(3)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Stage(context.Background(), Entry{Type: TypeCheckpoint}); err == nil {
		t.Fatal("reserved type staged")
	}
	if _, err := l.Stage(context.Background(), Entry{Type: "x", Arguments: []byte("{")}); err == nil || errors.Is(err, ErrBroken) {
		t.Fatalf("invalid arguments: err = %v, want a refusal that does not break the log", err)
	}
}
