package relay_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/relay/daemon"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
)

// readyWriter is a replica's stderr: it keeps the output and reports the
// address of the "listening on" line, the daemon's readiness signal.
type readyWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	ready chan string
	sent  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		for _, line := range strings.Split(w.buf.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, "chatmcp-relay: listening on "); ok {
				w.sent = true
				w.ready <- strings.Fields(rest)[0]
				break
			}
		}
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestMainReplicasStartAtOncePostgres starts four relay replicas at the
// same moment on one fresh PostgreSQL database (issue 8, finding 11: the
// second died with `relation "relay_nonces" already exists`): all must come
// up and the schema must be recorded once.
func TestMainReplicasStartAtOncePostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	const n = 4
	type replica struct {
		stderr *readyWriter
		code   chan int
	}
	var rs []replica
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		r := replica{&readyWriter{ready: make(chan string, 1)}, make(chan int, 1)}
		rs = append(rs, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.code <- daemon.Main(ctx, []string{"--dev", "--listen", "127.0.0.1:0", "--db", dsn}, r.stderr)
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i, r := range rs {
		select {
		case <-r.stderr.ready:
		case code := <-r.code:
			t.Fatalf("replica %d exited with %d before serving:\n%s", i, code, r.stderr.String())
		case <-time.After(60 * time.Second):
			t.Fatalf("replica %d did not start:\n%s", i, r.stderr.String())
		}
	}
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(context.Background(), `SELECT version FROM schema_migrations WHERE component = 'relay' ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if len(got) == 0 || got[0] != 1 || got[len(got)-1] != len(got) {
		t.Fatalf("schema_migrations for relay = %v, want 1…n once each", got)
	}
	t.Logf("four replicas up; relay schema at version %d", len(got))
}
