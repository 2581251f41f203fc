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
	"time"
)

// TestStage: a staged entry is in the file (readable by another reader)
// when Stage returns, before durable is called; durable returns nil once
// synced; many concurrent stages verify as one chain; a durable waited
// after Close still succeeds (Close synced everything).
func TestStage(t *testing.T) {
	key := testKey(2)
	l, path := openLog(t, &Options{Signer: key})
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

// TestDefer: a deferred entry rides with the next Stage (one group
// commit), is written on its own after DeferDelay when no Stage comes, and
// Close writes what is still queued; the log verifies and ends sealed.
func TestDefer(t *testing.T) {
	key := testKey(4)
	obs := &countObserver{}
	l, path := openLog(t, &Options{Signer: key, Observer: obs, DeferDelay: time.Hour})
	if err := l.Defer(Entry{Type: "test", Reason: "outcome-1"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); bytes.Contains(b, []byte("outcome-1")) {
		t.Fatal("a deferred entry was written before any Stage")
	}
	durable, err := l.Stage(context.Background(), Entry{Type: "test", Reason: "decision-2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := durable(); err != nil {
		t.Fatal(err)
	}
	if got := obs.batches(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("group commits %v, want one of 2 entries", got)
	}
	if err := l.Defer(Entry{Type: "test", Reason: "outcome-2"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Defer(Entry{Type: TypeHeader}); err == nil {
		t.Fatal("a reserved type was deferred")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("outcome-2")) {
		t.Fatal("Close did not write a deferred entry")
	}
	sum, err := Inspect(bytes.NewReader(b), &VerifyOptions{Key: key.Public().(ed25519.PublicKey)})
	if err != nil || sum.Entries != 3 || sum.Unsealed != 0 {
		t.Fatalf("Inspect: %+v, %v", sum, err)
	}

	// Alone, after DeferDelay.
	path2 := filepath.Join(t.TempDir(), "audit.jsonl")
	l2, err := Open(context.Background(), path2, &Options{Signer: key, DeferDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if err := l2.Defer(Entry{Type: "test", Reason: "alone"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, _ := os.ReadFile(path2); bytes.Contains(b, []byte("alone")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a deferred entry was never written on its own")
		}
		time.Sleep(time.Millisecond)
	}
}

type countObserver struct {
	mu sync.Mutex
	n  []int
}

func (o *countObserver) Committed(n int) {
	o.mu.Lock()
	o.n = append(o.n, n)
	o.mu.Unlock()
}

func (o *countObserver) batches() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int(nil), o.n...)
}
