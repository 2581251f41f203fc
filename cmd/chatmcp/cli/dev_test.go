package cli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type devOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *devOutput) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *devOutput) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDev runs `chatmcp dev` with no flags but a data directory, waits for
// its instructions and stops it as Ctrl-C would.
func TestDev(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb devOutput
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"dev", "--dir", t.TempDir()}, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	}()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops everything") {
		select {
		case code := <-done:
			t.Fatalf("dev exited %d early: %s", code, errb.String())
		case <-deadline:
			t.Fatalf("no instructions after 60s: %s", errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, want := range []string{"INSECURE", "cmt1.", "chatmcp connect https://127.0.0.1:", "--policy", "npx @modelcontextprotocol/inspector --cli", "chatmcp approvals list"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("instructions lack %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "INSECURE DEVELOPMENT MODE") {
		t.Errorf("the key broker's insecure banner is missing from stderr")
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Errorf("exit %d after Ctrl-C: %s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop after Ctrl-C")
	}
}
