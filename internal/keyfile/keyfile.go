// Package keyfile is the one way ChatMCP keeps a key or token in a file:
// created once with mode 0600, never seen half-written (a synced temporary
// file is put in place with one rename or link, then the directory is
// synced), and refused on load when its group or others may use it.
package keyfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// MaxSize caps a key file: keys, tokens and device secrets are small.
const MaxSize = 1 << 20

// Mode is the permission of every key file this package creates.
const Mode fs.FileMode = 0o600

// ErrPermissions is wrapped by the error Load and LoadOrCreate return for a
// key file that its group or others may read, write or execute.
var ErrPermissions = errors.New("key file is accessible by group or others")

// Load reads the key file at path. It fails, wrapping ErrPermissions, when
// the file's mode grants anything to group or others, so a key that was
// exposed is not silently used; the error says how to fix it.
func Load(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkMode(path, fi.Mode()); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("key file %s exceeds %d bytes", path, MaxSize)
	}
	return b, nil
}

func checkMode(path string, m fs.FileMode) error {
	if runtime.GOOS == "windows" {
		return nil // no Unix permission bits
	}
	if !m.IsRegular() {
		return fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := m.Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s, and replace the key if others may have read it", ErrPermissions, path, perm, path)
	}
	return nil
}

// LoadOrCreate returns the contents of the key file at path. When path does
// not exist it calls generate and creates the file with the result, mode
// 0600, atomically: a concurrent caller (another goroutine or process) sees
// either no file or the whole key, and when two race to create it exactly
// one key is written and both return it. The directory must exist.
//
// The caller parses the contents; a malformed file is its error to report.
func LoadOrCreate(path string, generate func() ([]byte, error)) ([]byte, error) {
	b, err := Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	data, err := generate()
	if err != nil {
		return nil, err
	}
	switch err := Create(path, data); {
	case err == nil:
		return data, nil
	case errors.Is(err, fs.ErrExist):
		return Load(path) // another caller created it first: use its key
	default:
		return nil, err
	}
}

// Create writes data to a new file at path with mode 0600, atomically and
// durably. It fails with an error wrapping fs.ErrExist when path exists, and
// never overwrites it.
func Create(path string, data []byte) error {
	tmp, err := writeTemp(path, data, Mode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// A hard link fails when path exists, where a rename would replace it:
	// it is the atomic "create with this content unless present".
	if err := os.Link(tmp, path); err != nil {
		var le *os.LinkError
		if errors.As(err, &le) && errors.Is(le.Err, fs.ErrExist) {
			return fmt.Errorf("creating %s: %w", path, fs.ErrExist)
		}
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// WriteAtomic replaces path with data and mode perm: it writes a temporary
// file in the same directory, syncs it, renames it over path and syncs the
// directory, so a reader (or a restart after a crash) sees the old or the
// new content, never a mix.
func WriteAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new synced file beside path with mode perm
// and returns its name.
func writeTemp(path string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return tmp, nil
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for sync
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
