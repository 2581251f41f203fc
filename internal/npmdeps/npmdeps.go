// Package npmdeps installs the npm packages that tests run (the MCP servers
// and inspector pinned by e2e/package-lock.json), so `go test ./...` on a
// fresh clone needs node and npm but no manual `npm ci`.
package npmdeps

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/internal/filelock"
)

// LockFile and Modules are the npm lock file and install directory inside a
// package directory.
const (
	LockFile = "package-lock.json"
	Modules  = "node_modules"
)

// installedMarkers say when node_modules was last installed: the file
// Install writes after npm ci succeeds, and the one npm itself writes at the
// end of an install with dependencies (its "hidden lockfile"), which also
// covers a node_modules installed by hand.
var installedMarkers = []string{".npmdeps-installed", ".package-lock.json"}

// Timeout bounds one `npm ci`.
const Timeout = 10 * time.Minute

// Install makes dir/node_modules match dir/package-lock.json: when it is
// missing or older than the lock file it runs `npm ci --no-audit --no-fund`
// in dir, under a file lock so that test binaries running in parallel
// install once and the others wait. It reports whether it ran npm. Node or
// npm missing is an error, not a reason to skip.
func Install(ctx context.Context, dir string) (installed bool, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(dir, LockFile)); err != nil {
		return false, fmt.Errorf("npmdeps: %w", err)
	}
	if fresh(dir) {
		return false, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return false, errors.New("npmdeps: npm is not installed: the end-to-end tests need Node.js 20 or later and npm on PATH")
	}
	if _, err := exec.LookPath("node"); err != nil {
		return false, errors.New("npmdeps: node is not installed: the end-to-end tests need Node.js 20 or later on PATH")
	}
	unlock, err := filelock.Lock(lockPath(dir))
	if err != nil {
		return false, fmt.Errorf("npmdeps: locking: %w", err)
	}
	defer unlock()
	// Another process may have installed while this one waited.
	if fresh(dir) {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return false, fmt.Errorf("npmdeps: npm ci in %s (needs the npm registry): %v\n%s", dir, err, out.Bytes())
	}
	if err := os.MkdirAll(filepath.Join(dir, Modules), 0o755); err != nil {
		return false, fmt.Errorf("npmdeps: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, Modules, installedMarkers[0]), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return false, fmt.Errorf("npmdeps: %w", err)
	}
	return true, nil
}

// fresh reports whether dir/node_modules was installed after the lock file
// last changed.
func fresh(dir string) bool {
	lockInfo, err := os.Stat(filepath.Join(dir, LockFile))
	if err != nil {
		return false
	}
	for _, m := range installedMarkers {
		if inst, err := os.Stat(filepath.Join(dir, Modules, m)); err == nil && !inst.ModTime().Before(lockInfo.ModTime()) {
			return true
		}
	}
	return false
}

// lockPath is outside the checkout, so the lock never shows in git status.
func lockPath(dir string) string {
	h := sha256.Sum256([]byte(dir))
	return filepath.Join(os.TempDir(), "chatmcp-npm-ci-"+hex.EncodeToString(h[:8])+".lock")
}

// E2EDir returns the repository's e2e directory, found from the module root
// above the working directory.
func E2EDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "e2e"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("npmdeps: no go.mod above the working directory")
		}
		dir = parent
	}
}

var (
	e2eOnce sync.Once
	e2eMods string
	e2eErr  error
)

// Require installs e2e's npm packages (once per test binary) and returns
// e2e/node_modules, failing t when they cannot be installed.
func Require(t testing.TB) string {
	t.Helper()
	e2eOnce.Do(func() {
		var dir string
		if dir, e2eErr = E2EDir(); e2eErr != nil {
			return
		}
		if _, e2eErr = Install(context.Background(), dir); e2eErr == nil {
			e2eMods = filepath.Join(dir, Modules)
		}
	})
	if e2eErr != nil {
		t.Fatalf("installing the npm packages tests need: %v", e2eErr)
	}
	return e2eMods
}
