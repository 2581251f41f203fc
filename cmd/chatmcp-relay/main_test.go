package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
)

// startBinary runs the relay binary and returns its URL once it listens.
func startBinary(t *testing.T, bin string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	re := regexp.MustCompile(`listening on (http://\S+)`)
	lines := bufio.NewScanner(stderr)
	urlc := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if m := re.FindStringSubmatch(lines.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	select {
	case u := <-urlc:
		return cmd, u
	case <-time.After(30 * time.Second):
		t.Fatal("relay did not start")
	}
	return nil, ""
}

// Nothing the relay acknowledged is lost when it is killed with SIGKILL
// in the middle of a stream of sends.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a subprocess")
	}
	bin := filepath.Join(t.TempDir(), "chatmcp-relay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building relay: %v\n%s", err, out)
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			args := []string{"--dev", "--data", t.TempDir()}
			if backend == "postgres" {
				args = append(args, "--db", storetest.PostgresDSN(t))
			}
			cmd, url := startBinary(t, bin, append(args, "--listen", "127.0.0.1:0")...)
			addr := strings.TrimPrefix(url, "http://")
			ctx := context.Background()
			newClient := func(w *wallet.Keypair, home, url string) *chat.Client {
				c, err := chat.New(&chat.Options{Relay: url, Wallet: w, Home: home})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			aw, _ := wallet.Generate(rand.Reader)
			bw, _ := wallet.Generate(rand.Reader)
			ahome, bhome := t.TempDir(), t.TempDir()
			ac, bc := newClient(aw, ahome, url), newClient(bw, bhome, url)
			if err := bc.Login(ctx); err != nil {
				t.Fatal(err)
			}
			if err := bc.Allow(ctx, aw.Address()); err != nil {
				t.Fatal(err)
			}
			acked := make(chan string, 10000)
			stop := make(chan struct{})
			go func() {
				defer close(acked)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					s, err := ac.SendDM(ctx, bw.Address(), fmt.Sprintf("message %d", i))
					if err != nil {
						return // the relay died mid-request: not acknowledged
					}
					acked <- s.ID
				}
			}()
			// Kill mid-stream once at least 20 sends were acknowledged.
			var ids []string
			deadline := time.After(30 * time.Second)
			for len(ids) < 20 {
				select {
				case id, ok := <-acked:
					if !ok {
						t.Fatalf("sender stopped after %d acknowledgements, before the kill", len(ids))
					}
					ids = append(ids, id)
				case <-deadline:
					t.Fatalf("only %d messages acknowledged in 30s", len(ids))
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			close(stop)
			for id := range acked {
				ids = append(ids, id)
			}
			if len(ids) < 5 {
				t.Fatalf("only %d messages acknowledged before the kill", len(ids))
			}
			_, url2 := startBinary(t, bin, append(args, "--listen", addr)...)
			msgs, err := newClient(bw, bhome, url2).ReadAll(ctx, chat.ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, m := range msgs {
				if m.Err != "" {
					t.Fatalf("stored message %s does not open: %s", m.ID, m.Err)
				}
				have[m.ID] = true
			}
			for _, id := range ids {
				if !have[id] {
					t.Errorf("acknowledged message %s lost after kill -9", id)
				}
			}
			t.Logf("%d acknowledged before SIGKILL, %d stored after restart", len(ids), len(msgs))
		})
	}
}

func TestFlags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "chatmcp-relay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building relay: %v\n%s", err, out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--dev", "--listen", "127.0.0.1:0"}, "--data DIR (or --db DSN) is required"},
		{[]string{"--data", t.TempDir(), "--listen", "127.0.0.1:0"}, "--tls-cert and --tls-key are required"},
		{[]string{"--dev", "--data", t.TempDir(), "--listen", "0.0.0.0:0"}, "only on a loopback address"},
	} {
		out, err := exec.Command(bin, tt.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("%v: err %v, output %q; want %q", tt.args, err, out, tt.want)
		}
	}
}

// The relay is untrusted: its binary links no key broker, gateway or
// attestation-verifying code, and the chat client and wallet link no server.
func TestDependencies(t *testing.T) {
	for _, tt := range []struct {
		pkgs      []string
		forbidden []string
	}{
		{[]string{"."}, []string{"/kbs", "/gateway", "/attest", "/ratls", "/captoken", "/audit"}},
		{[]string{"../../chat/...", "../../wallet/..."}, []string{"/relay", "/kbs", "/gateway"}},
	} {
		out, err := exec.Command("go", append([]string{"list", "-deps"}, tt.pkgs...)...).Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		for _, dep := range strings.Fields(string(out)) {
			rest, ok := strings.CutPrefix(dep, "github.com/chatmcp/chatmcp")
			if !ok {
				continue
			}
			for _, f := range tt.forbidden {
				if rest == f || strings.HasPrefix(rest, f+"/") {
					t.Errorf("%v links %s", tt.pkgs, dep)
				}
			}
		}
	}
}
