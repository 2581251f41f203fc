package audit

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
)

// commits is an Observer that records each group commit's size.
type commits struct {
	mu    sync.Mutex
	sizes []int
}

func (c *commits) Committed(n int) {
	c.mu.Lock()
	c.sizes = append(c.sizes, n)
	c.mu.Unlock()
}

// The Observer sees every group commit: the sizes add up to the entries
// appended, each between 1 and the number of appenders.
func TestObserverSeesGroupCommits(t *testing.T) {
	obs := &commits{}
	l, err := Open(context.Background(), filepath.Join(t.TempDir(), "audit.jsonl"), &Options{Signer: testKey(1), Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const workers, each = 8, 10
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := l.Append(context.Background(), Entry{Type: "test"}); err != nil {
					t.Errorf("Append: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	total := 0
	for _, n := range obs.sizes {
		if n < 1 || n > workers {
			t.Errorf("group commit of %d entries, want 1..%d", n, workers)
		}
		total += n
	}
	if total != workers*each {
		t.Errorf("observed commits hold %d entries (%d commits), want %d", total, len(obs.sizes), workers*each)
	}
}
