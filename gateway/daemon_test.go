package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/gateway/daemon"
)

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "gw.yaml")
	os.WriteFile(good, []byte("upstreams:\n  a:\n    url: http://127.0.0.1:1/mcp\n"), 0o600)
	secret := filepath.Join(dir, "secret.yaml")
	os.WriteFile(secret, []byte("kbs: http://127.0.0.1:1\nupstreams:\n  a:\n    url: http://127.0.0.1:1/mcp\n    headers: {A: {secret: s}}\n"), 0o600)
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("audit_everything: true\nupstreams:\n  a:\n    url: http://127.0.0.1:1/mcp\n"), 0o600)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no config", nil, "usage"},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"no attester outside dev", []string{"--config", good}, "no TEE attester"},
		{"secrets without a KBS client", []string{"--config", secret, "--dev"}, "no KBS client"},
		{"unknown config key", []string{"--config", unknown, "--dev"}, "audit_everything"},
		{"flag without a value", []string{"--config"}, "flag needs an argument"},
		{"unreachable upstream", []string{"--config", good, "--dev"}, "upstream"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := daemon.Main(context.Background(), c.args, &stderr, daemon.Deps{})
			if code == 0 || !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("exit %d, stderr %q; want an error with %q", code, stderr.String(), c.want)
			}
		})
	}
}

func TestRunDev(t *testing.T) {
	up := newUpstream(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gw.yaml")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %s\ndata: ./data\nupstreams:\n  up:\n    url: %s\n", addr, up.http.URL)), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- daemon.Main(ctx, []string{"--config", cfg, "--dev"}, &stderr, daemon.Deps{}) }()
	// Ready means the gateway itself answers on addr: a bare TCP accept
	// could be another test's listener that took the freed port.
	// (Readiness only: certificate verification is tested elsewhere.)
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := probe.Get("https://" + addr + gateway.PathCredentialKey)
		if err == nil {
			resp.Body.Close()
			if resp.TLS != nil && resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("gateway did not start: %v; stderr: %s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	probe.CloseIdleConnections()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "SIMULATED TEE") {
		t.Fatal("no --dev banner")
	}
	st, err := os.Stat(filepath.Join(dir, "data", "admin.token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v", err)
	}
}

func TestRunDetectsAttester(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gw.yaml")
	os.WriteFile(cfg, []byte("upstreams:\n  a:\n    url: http://127.0.0.1:1/mcp\n"), 0o600)
	detected := false
	deps := daemon.Deps{Detect: func() (attest.Attester, error) {
		detected = true
		return nil, errors.New("no TEE device found (looked for /dev/sev-guest)")
	}}
	var stderr bytes.Buffer
	code := daemon.Main(context.Background(), []string{"--config", cfg}, &stderr, deps)
	if !detected {
		t.Fatal("Main did not look for a TEE device outside --dev")
	}
	if code == 0 || !strings.Contains(stderr.String(), "no TEE device found") {
		t.Fatalf("exit %d, stderr %q; want the detection failure named", code, stderr.String())
	}
}

// exitErr is a daemon.Main exit code as an error, for tests that wait on
// one: the cause is on the daemon's stderr.
func exitErr(code int) error {
	if code != 0 {
		return fmt.Errorf("chatmcp-gateway exited with code %d", code)
	}
	return nil
}
