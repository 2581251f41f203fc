package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/kbsclient"
)

func TestRunRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no listen", Options{Data: t.TempDir()}, "required"},
		{"dev on all interfaces", Options{Listen: "0.0.0.0:0", Data: t.TempDir(), Dev: true}, "loopback only"},
		{"no TLS without dev", Options{Listen: "127.0.0.1:0", Data: t.TempDir()}, "no TLS"},
		{"bad TLS files", Options{Listen: "127.0.0.1:0", Data: t.TempDir(), TLSCert: "/nonexistent", TLSKey: "/nonexistent"}, "--tls-cert"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Stderr = io.Discard
			err := Run(ctx, &tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestFirstStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, &Options{Listen: "127.0.0.1:0", Data: dir, Dev: true, Stderr: &stderr, Ready: func(a net.Addr) { ready <- a }})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	tok, _ := os.ReadFile(filepath.Join(dir, FileAdminToken))
	ac := &kbsclient.AdminClient{BaseURL: "http://" + addr.String(), Token: strings.TrimSpace(string(tok))}
	if _, err := ac.List(ctx); err != nil {
		t.Fatalf("List with the generated token: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if !strings.Contains(stderr.String(), "INSECURE DEVELOPMENT MODE") {
		t.Error("no dev banner")
	}
	for name, mode := range map[string]os.FileMode{"": 0o700, FileAdminToken: 0o600, FileSealingKey: 0o600, FileAuditKey: 0o600, FileDB: 0o600, FileAuditLog: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	pub, _ := os.ReadFile(filepath.Join(dir, FileAuditPub))
	key, _ := hex.DecodeString(strings.TrimSpace(string(pub)))
	f, _ := os.Open(filepath.Join(dir, FileAuditLog))
	defer f.Close()
	if err := audit.Verify(f, &audit.VerifyOptions{Key: key}); err != nil {
		t.Fatalf("audit log after clean shutdown: %v", err)
	}
}

// TestKill9 builds chatmcp-kbs, writes secrets in a loop, kills the daemon
// with SIGKILL in the middle of the writes, restarts it, and checks that
// every acknowledged write survived, the store opens and the audit log
// verifies.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	if runtime.GOOS != "linux" {
		t.Skip("SIGKILL test runs on Linux")
	}
	bin := filepath.Join(t.TempDir(), "chatmcp-kbs")
	build := exec.Command("go", "build", "-o", bin, "github.com/chatmcp/chatmcp/cmd/chatmcp-kbs")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building chatmcp-kbs: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	policy := "allow: [sim]\n"
	acked := map[string]int{}
	for round := 0; round < 3; round++ {
		cmd, url := startDaemon(t, bin, dir)
		tok, _ := os.ReadFile(filepath.Join(dir, FileAdminToken))
		ac := &kbsclient.AdminClient{BaseURL: url, Token: strings.TrimSpace(string(tok))}
		// Everything acknowledged before the previous kill is here.
		list, err := ac.List(ctx)
		if err != nil {
			t.Fatalf("round %d: List: %v", round, err)
		}
		have := map[string]int{}
		for _, s := range list {
			have[s.Name] = s.Version
		}
		for name, v := range acked {
			if have[name] < v {
				t.Fatalf("round %d: %s at version %d, acknowledged %d", round, name, have[name], v)
			}
		}
		// Write concurrently and kill mid-stream.
		stop := make(chan struct{})
		errc := make(chan error, 4)
		type ack struct {
			name string
			v    int
		}
		acks := make(chan ack, 10000)
		for w := 0; w < 4; w++ {
			go func(w int) {
				for i := 0; ; i++ {
					select {
					case <-stop:
						errc <- nil
						return
					default:
					}
					name := fmt.Sprintf("s%d-%d", w, i%5)
					info, err := ac.Put(ctx, name, []byte("value"), policy)
					if err != nil {
						errc <- nil // the kill interrupts writes
						return
					}
					acks <- ack{name, info.Version}
				}
			}(w)
		}
		// Kill mid-stream once 8 writes were acknowledged.
		var early []ack
		deadline := time.After(30 * time.Second)
		for len(early) < 8 {
			select {
			case a := <-acks:
				early = append(early, a)
			case <-deadline:
				t.Fatalf("round %d: only %d writes acknowledged in 30s", round, len(early))
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		close(stop)
		for w := 0; w < 4; w++ {
			<-errc
		}
		close(acks)
		for a := range acks {
			early = append(early, a)
		}
		n := 0
		for _, a := range early {
			n++
			if a.v > acked[a.name] {
				acked[a.name] = a.v
			}
		}
		if n == 0 {
			t.Fatalf("round %d: no write acknowledged before the kill", round)
		}
	}
	cmd, url := startDaemon(t, bin, dir)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	tok, _ := os.ReadFile(filepath.Join(dir, FileAdminToken))
	list, err := (&kbsclient.AdminClient{BaseURL: url, Token: strings.TrimSpace(string(tok))}).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]int{}
	for _, s := range list {
		have[s.Name] = s.Version
	}
	for name, v := range acked {
		if have[name] < v {
			t.Fatalf("after restart: %s at version %d, acknowledged %d", name, have[name], v)
		}
	}
	f, _ := os.Open(filepath.Join(dir, FileAuditLog))
	defer f.Close()
	sum, err := audit.Inspect(f, nil)
	if err != nil {
		t.Fatalf("audit log after kills: %v", err)
	}
	total := 0
	for _, v := range acked {
		total += v
	}
	if sum.Entries < total {
		t.Fatalf("audit log has %d entries, fewer than %d acknowledged puts", sum.Entries, total)
	}
}

func startDaemon(t *testing.T, bin, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "--dev", "--listen", "127.0.0.1:0", "--data", dir)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "chatmcp-kbs: listening on "); ok {
			go io.Copy(io.Discard, stderr)
			return cmd, strings.Fields(rest)[0]
		}
		if strings.HasPrefix(line, "chatmcp-kbs: error:") {
			cmd.Wait()
			t.Fatalf("daemon failed: %s", line)
		}
	}
	cmd.Wait()
	t.Fatal(errors.New("daemon exited without listening"))
	return nil, ""
}
