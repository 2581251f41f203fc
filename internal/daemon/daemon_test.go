package daemon

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/internal/ops"
)

func TestStartOps(t *testing.T) {
	var stderr bytes.Buffer
	fs, of := FlagSet("chatmcp-test", &stderr)
	if err := fs.Parse([]string{"--metrics-listen", "127.0.0.1:0", "--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	registered := false
	log, stop, err := StartOps("chatmcp-test", &stderr, of, nil, func(*ops.Registry) { registered = true })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if log == nil || !registered {
		t.Fatalf("logger %v, registered %v", log, registered)
	}
	line := stderr.String()
	f := strings.Fields(line)
	url, ok := "", len(f) > 3
	if ok {
		url = f[3]
	}
	if !strings.HasPrefix(line, "chatmcp-test: metrics on http://127.0.0.1:") || !ok {
		t.Fatalf("stderr %q", line)
	}
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
}

func TestStartOpsOff(t *testing.T) {
	var stderr bytes.Buffer
	_, of := FlagSet("chatmcp-test", &stderr)
	_, stop, err := StartOps("chatmcp-test", &stderr, of, nil, func(*ops.Registry) { t.Error("register called without --metrics-listen") })
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if stderr.Len() != 0 {
		t.Fatalf("stderr %q", stderr.String())
	}
	of.LogFormat = "xml"
	if _, _, err := StartOps("chatmcp-test", &stderr, of, nil, nil); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("err %v, want --log-format error", err)
	}
}

func TestListenDevLoopbackOnly(t *testing.T) {
	var stderr bytes.Buffer
	if ln, err := Listen("chatmcp-test", "0.0.0.0:0", true, &stderr); err == nil {
		ln.Close()
		t.Fatal("--dev listened on a non-loopback address")
	} else if !strings.Contains(err.Error(), "only on a loopback address") {
		t.Fatalf("err %v", err)
	}
	ln, err := Listen("chatmcp-test", "127.0.0.1:0", true, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if !strings.Contains(stderr.String(), "chatmcp-test: WARNING: --dev") {
		t.Fatalf("stderr %q", stderr.String())
	}
}

func TestServeStopsWithContext(t *testing.T) {
	var stderr bytes.Buffer
	ln, err := Listen("chatmcp-test", "127.0.0.1:0", true, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cancel() })}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, hs, ln, true, "", "") }()
	resp, err := http.Get(Scheme(true) + "://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve after shutdown: %v, want nil", err)
	}
}

func TestConfigArgs(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		path, stderr string
		code         int
		done, dev    bool
	}{
		{args: []string{"--config", "c.yaml", "--dev"}, path: "c.yaml", dev: true},
		{args: []string{"--config", "c.yaml"}, path: "c.yaml"},
		{args: []string{"--help"}, done: true},
		{args: nil, code: 1, done: true, stderr: "d: error: usage: d --config FILE [--dev]\n"},
		{args: []string{"--config", "c.yaml", "extra"}, code: 1, done: true, stderr: "d: error: usage: d --config FILE [--dev]\n"},
		{args: []string{"--nope"}, code: 1, done: true, stderr: "d: error: flag provided but not defined: -nope\n"},
	} {
		var stderr strings.Builder
		fs, _ := FlagSet("d", &stderr)
		var dev bool
		path, code, done := ConfigArgs(fs, "d", "docs/x.md", tc.args, &stderr, &dev)
		if path != tc.path || code != tc.code || done != tc.done || dev != tc.dev {
			t.Errorf("%q: path %q code %d done %v dev %v, want %q %d %v %v", tc.args, path, code, done, dev, tc.path, tc.code, tc.done, tc.dev)
		}
		if tc.stderr != "" && !strings.HasSuffix(stderr.String(), tc.stderr) {
			t.Errorf("%q: stderr %q, want it to end with %q", tc.args, stderr.String(), tc.stderr)
		}
	}
}
