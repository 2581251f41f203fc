package keyfile

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func random() ([]byte, error) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return b, err
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	k1, err := LoadOrCreate(path, random)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != Mode {
		t.Errorf("mode %04o, want %04o", fi.Mode().Perm(), Mode)
	}
	k2, err := LoadOrCreate(path, func() ([]byte, error) {
		t.Error("generate called for an existing file")
		return random()
	})
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("reloaded key = %x, %v; want %x", k2, err, k1)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}

func TestLoadOrCreateGenerateError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	boom := errors.New("no entropy")
	if _, err := LoadOrCreate(path, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed generate left %s: %v", path, err)
	}
}

// TestLoadOrCreateConcurrent races goroutines to create one key file: every
// one must return the same key, the one on disk.
func TestLoadOrCreateConcurrent(t *testing.T) {
	for range 20 {
		path := filepath.Join(t.TempDir(), "k")
		const n = 2
		var (
			wg   sync.WaitGroup
			keys [n][]byte
			errs [n]error
		)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				keys[i], errs[i] = LoadOrCreate(path, random)
			})
		}
		close(start)
		wg.Wait()
		onDisk, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("goroutine %d: %v", i, errs[i])
			}
			if !bytes.Equal(keys[i], onDisk) {
				t.Fatalf("goroutine %d got %x, the file holds %x", i, keys[i], onDisk)
			}
		}
	}
}

func TestLoadRefusesOpenPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	for _, perm := range []fs.FileMode{0o640, 0o604, 0o660, 0o644, 0o700} {
		path := filepath.Join(t.TempDir(), "k")
		if err := os.WriteFile(path, []byte("key"), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, perm); err != nil { // past the umask
			t.Fatal(err)
		}
		_, err := Load(path)
		if perm&0o077 == 0 {
			if err != nil {
				t.Errorf("mode %04o: %v", perm, err)
			}
			continue
		}
		if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: Load = %v, want ErrPermissions naming the fix", perm, err)
		}
		if _, err := LoadOrCreate(path, random); !errors.Is(err, ErrPermissions) {
			t.Errorf("mode %04o: LoadOrCreate = %v, want ErrPermissions", perm, err)
		}
	}
}

func TestLoadRefusesDirectoryAndHugeFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Error("Load accepted a directory")
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil {
		t.Error("Load accepted a file over MaxSize")
	}
}

func TestCreateNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wallet.json")
	if err := Create(path, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, []byte("second")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Errorf("file holds %q after a refused Create", b)
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pins.json")
	for _, tc := range []struct {
		data string
		perm fs.FileMode
	}{{"one", 0o600}, {"two, longer", 0o644}, {"3", 0o600}} {
		if err := WriteAtomic(path, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != tc.data || fi.Mode().Perm() != tc.perm {
			t.Errorf("after WriteAtomic(%q, %04o): %q mode %04o", tc.data, tc.perm, b, fi.Mode().Perm())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only %s", len(entries), path)
	}
	if err := WriteAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("WriteAtomic into a missing directory succeeded")
	}
}
