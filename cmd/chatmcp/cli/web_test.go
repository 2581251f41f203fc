package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestWebCommand runs `chatmcp web` in-process: a non-loopback address is
// refused; on loopback it prints exactly one line, `chatmcp web: open
// URL`, once it serves; the page without the link is 401, the link signs
// the browser in to the sign-in page; Ctrl-C stops it.
func TestWebCommand(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "localhost:8450", "192.0.2.1:8450"} {
		var out, errb devOutput
		code := Main(context.Background(), []string{"web", "--listen", addr, "--relay", "http://127.0.0.1:1", "--home", t.TempDir()},
			&Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
		if code != ExitUsage || !strings.Contains(errb.String(), "not a loopback IP address") || out.String() != "" {
			t.Errorf("web --listen %s: exit %d, stdout %q, stderr %q; want exit 1 naming loopback", addr, code, out.String(), errb.String())
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb devOutput
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"web", "--listen", "127.0.0.1:0", "--relay", "http://127.0.0.1:1", "--home", t.TempDir()},
			&Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	}()
	line := regexp.MustCompile(`^chatmcp web: open (http://127\.0\.0\.1:\d+)/launch\?secret=[A-Za-z0-9_-]{43}\n$`)
	deadline := time.After(30 * time.Second)
	for !strings.HasSuffix(out.String(), "\n") {
		select {
		case code := <-done:
			t.Fatalf("web exited %d: %s", code, errb.String())
		case <-deadline:
			t.Fatalf("no line after 30 s: %q %s", out.String(), errb.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	m := line.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("stdout %q is not exactly one 'chatmcp web: open URL' line", out.String())
	}
	resp, err := http.Get(m[1] + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET / without the cookie: %d, want 401", resp.StatusCode)
	}
	jar, _ := cookiejar.New(nil)
	resp, err = (&http.Client{Jar: jar}).Get(strings.TrimPrefix(strings.TrimSpace(out.String()), "chatmcp web: open "))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "With a keypair file") {
		t.Errorf("the launch link: %d, not the sign-in page", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Errorf("exit %d after Ctrl-C: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("web did not stop")
	}
	if strings.Count(out.String(), "\n") != 1 {
		t.Errorf("stdout has more than one line: %q", out.String())
	}
}
