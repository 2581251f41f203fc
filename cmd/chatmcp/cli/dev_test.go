package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"regexp"
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

// TestDev runs `chatmcp dev` with a data directory (and any free gateway
// port, so it runs beside a developer's own stack), waits for its
// instructions and stops it as Ctrl-C would.
func TestDev(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb devOutput
	done := make(chan int, 1)
	dir := t.TempDir()
	go func() {
		done <- Main(ctx, []string{"dev", "--dir", dir, "--listen", "127.0.0.1:0"}, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
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
	// Each banner line names what it says it names.
	for _, re := range []string{`\n  data +` + regexp.QuoteMeta(dir) + `\n`, `\n  relay +http://127\.0\.0\.1:\d+ `,
		`\n  metrics +http://127\.0\.0\.1:\d+ \(key broker\)  http://127\.0\.0\.1:\d+ \(gateway\)  http://127\.0\.0\.1:\d+ \(relay\)\n`} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("banner does not match %s:\n%s", re, out.String())
		}
	}
	// The printed ops addresses answer: each daemon is ready.
	for _, m := range regexp.MustCompile(`(http://127\.0\.0\.1:\d+) \((key broker|gateway|relay)\)`).FindAllStringSubmatch(out.String(), -1) {
		resp, err := http.Get(m[1] + "/readyz")
		if err != nil {
			t.Fatalf("%s /readyz: %v", m[2], err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /readyz = %d, want 200", m[2], resp.StatusCode)
		}
	}
	// The two web links sign alice and bob in (chatmcp web).
	for _, name := range []string{"alice", "bob"} {
		m := regexp.MustCompile(`\n  ` + name + ` +(http://127\.0\.0\.1:\d+/launch\?secret=\S+)\n`).FindStringSubmatch(out.String())
		if m == nil {
			t.Errorf("no web link for %s:\n%s", name, out.String())
			continue
		}
		jar, _ := cookiejar.New(nil)
		resp, err := (&http.Client{Jar: jar}).Get(m[1])
		if err != nil {
			t.Fatalf("%s's web link: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Inbox") || !strings.Contains(string(body), "Signed in as") {
			t.Errorf("%s's web link: %d, not the signed-in inbox", name, resp.StatusCode)
		}
	}
	// Before the stack starts (the slow part) it says what it is doing.
	if !strings.HasPrefix(errb.String(), "chatmcp dev: starting the key broker") {
		t.Errorf("stderr does not open with what dev is starting: %q", errb.String())
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

// TestDevPortBusy: a second `chatmcp dev` (or anything else on the port)
// makes dev fail, naming the busy address and the flag that picks another,
// instead of silently serving on other ports than the README's lines use.
func TestDevPortBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	// The default, 127.0.0.1:8443, is busy too: held here, or already by
	// someone else.
	if l, err := net.Listen("tcp", "127.0.0.1:8443"); err == nil {
		defer l.Close()
	}
	for _, tt := range []struct {
		name string
		args []string
		addr string
	}{
		{"default port", nil, "127.0.0.1:8443"},
		{"--listen", []string{"--listen", busy}, busy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out, errb devOutput
			code := Main(ctx, append([]string{"dev", "--dir", t.TempDir()}, tt.args...), &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, ExitUsage, out.String(), errb.String())
			}
			for _, want := range []string{"chatmcp: error: gateway address " + tt.addr + " is in use", "chatmcp: hint: choose another port with --listen"} {
				if !strings.Contains(errb.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, errb.String())
				}
			}
			if out.String() != "" {
				t.Errorf("a banner was printed although dev failed:\n%s", out.String())
			}
		})
	}
}
