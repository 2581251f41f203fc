// Package tinyllm starts the TINY TEST MODEL of ../shared/llm (about 1M
// parameters, an OpenAI-compatible server over node-llama-cpp) for tests:
// it copies the server's package files into a cache directory the tests
// own, installs them there with `npm ci` under a file lock, and runs
// `node server.mjs 0`. The model is not a useful assistant: it picks tools
// reliably and garbles argument values, so tests assert on a call's shape
// and tool name only. The product never depends on it.
package tinyllm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/internal/filelock"
)

// EnvDir overrides where the model's files are (default: ../shared/llm
// beside the module root).
const EnvDir = "CHATMCP_TINYLLM_DIR"

// Dir finds the read-only model directory.
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(filepath.Dir(dir), "shared", "llm")
			if _, err := os.Stat(filepath.Join(d, "tiny-chat.gguf")); err != nil {
				return "", fmt.Errorf("tinyllm: the tiny test model is not at %s (set %s): %w", d, EnvDir, err)
			}
			return d, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("tinyllm: no go.mod above the working directory")
		}
		dir = parent
	}
}

var files = []string{"package.json", "package-lock.json", "server.mjs"}

// Install copies the server's files into a cache directory keyed by their
// hash and runs `npm ci --omit=optional` there once (under an exclusive file
// lock, so parallel test binaries install once). It returns that directory.
func Install(ctx context.Context, src string) (string, error) {
	h := sha256.New()
	var contents [][]byte
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", fmt.Errorf("tinyllm: %w", err)
		}
		h.Write(b)
		contents = append(contents, b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "chatmcp-tests", "tinyllm-"+hex.EncodeToString(h.Sum(nil)[:8]))
	marker := filepath.Join(dir, "node_modules", ".tinyllm-installed")
	if _, err := os.Stat(marker); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("tinyllm: %w", err)
	}
	unlock, err := filelock.Lock(dir + ".lock")
	if err != nil {
		return "", fmt.Errorf("tinyllm: locking: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(marker); err == nil {
		return dir, nil
	}
	for i, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), contents[i], 0o644); err != nil {
			return "", fmt.Errorf("tinyllm: %w", err)
		}
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", errors.New("tinyllm: npm is not installed: the tiny test model needs Node.js 20 or later and npm on PATH")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--omit=optional", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("tinyllm: npm ci in %s (needs the npm registry): %v\n%s", dir, err, out.Bytes())
	}
	if err := os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("tinyllm: %w", err)
	}
	return dir, nil
}

var (
	installOnce sync.Once
	installDir  string
	modelPath   string
	installErr  error
)

var listeningRE = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// Start installs (once per test binary) and starts the tiny test model's
// server on a free loopback port, stopped when t ends. It returns the
// OpenAI-compatible base URL (http://127.0.0.1:PORT/v1). It fails t, never
// skips, when the model cannot be installed or started.
func Start(t testing.TB) string {
	t.Helper()
	u, stop, err := Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return u
}

// Run is Start for programs (benchmarks): it returns the base URL and a
// function that stops the server.
func Run(ctx context.Context) (baseURL string, stop func(), err error) {
	installOnce.Do(func() {
		var src string
		if src, installErr = Dir(); installErr != nil {
			return
		}
		modelPath = filepath.Join(src, "tiny-chat.gguf")
		installDir, installErr = Install(context.Background(), src)
	})
	if installErr != nil {
		return "", nil, installErr
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, "node", "server.mjs", "0")
	cmd.Dir = installDir
	cmd.Env = append(os.Environ(), "MODEL_PATH="+modelPath, "THREADS=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return "", nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return "", nil, fmt.Errorf("tinyllm: starting node: %w", err)
	}
	stop = func() {
		cancel()
		cmd.Wait()
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		io.Copy(io.Discard, stdout)
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			stop()
			return "", nil, fmt.Errorf("tinyllm: the server exited without listening: %s", strings.TrimSpace(stderr.String()))
		}
		return u + "/v1", stop, nil
	case <-time.After(60 * time.Second):
		stop()
		return "", nil, fmt.Errorf("tinyllm: the server did not listen within 60 s: %s", strings.TrimSpace(stderr.String()))
	}
}
