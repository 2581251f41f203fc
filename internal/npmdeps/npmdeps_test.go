package npmdeps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// copyE2E copies e2e's package.json and lock file into a fresh directory,
// as a fresh clone has them: no node_modules.
func copyE2E(t *testing.T) string {
	t.Helper()
	src, err := E2EDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"package.json", LockFile} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestInstallFreshClone installs e2e's locked packages where none are
// installed: concurrent callers (parallel test binaries) run npm ci once,
// and a later call finds them current.
func TestInstallFreshClone(t *testing.T) {
	dir := copyE2E(t)
	ctx := context.Background()

	var wg sync.WaitGroup
	results := make([]bool, 3)
	errs := make([]error, 3)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = Install(ctx, dir) })
	}
	wg.Wait()
	ran := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("Install: %v", errs[i])
		}
		if results[i] {
			ran++
		}
	}
	if ran != 1 {
		t.Errorf("%d concurrent calls ran npm ci, want 1", ran)
	}
	for _, bin := range []string{"mcp-inspector", "mcp-server-filesystem"} {
		if _, err := os.Stat(filepath.Join(dir, Modules, ".bin", bin)); err != nil {
			t.Errorf("after Install: %v", err)
		}
	}

	if again, err := Install(ctx, dir); err != nil || again {
		t.Errorf("second Install ran npm ci again (%v) or failed: %v", again, err)
	}
}

// TestInstallStaleLock: a lock file newer than the install (a git pull
// changed it) installs again. A package without dependencies keeps it quick.
func TestInstallStaleLock(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"package.json": `{"name": "npmdeps-test", "version": "1.0.0", "private": true}`,
		LockFile:       `{"name": "npmdeps-test", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": {"": {"name": "npmdeps-test", "version": "1.0.0"}}}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if ran, err := Install(ctx, dir); err != nil || !ran {
		t.Fatalf("first Install: ran npm ci %v, err %v", ran, err)
	}
	if ran, err := Install(ctx, dir); err != nil || ran {
		t.Fatalf("Install of a current directory: ran npm ci %v, err %v", ran, err)
	}
	old := time.Now().Add(-time.Hour)
	for _, m := range installedMarkers {
		if err := os.Chtimes(filepath.Join(dir, Modules, m), old, old); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if ran, err := Install(ctx, dir); err != nil || !ran {
		t.Errorf("Install after the lock file changed: ran npm ci %v, err %v; want a reinstall", ran, err)
	}
}

// TestInstallWithoutNPM fails, naming what is missing, instead of skipping.
func TestInstallWithoutNPM(t *testing.T) {
	dir := copyE2E(t)
	t.Setenv("PATH", t.TempDir())
	_, err := Install(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "npm is not installed") {
		t.Fatalf("Install without npm on PATH: %v, want an error saying npm is not installed", err)
	}
}
