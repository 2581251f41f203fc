package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func fixedClock() func() time.Time {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

// openLog opens a new log at audit.jsonl in a fresh temporary directory
// and returns it with its path.
func openLog(t testing.TB, opts *Options) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l, path
}

// writeLog makes a closed log with n entries and returns its path.
func writeLog(t testing.TB, n int, opts *Options) string {
	t.Helper()
	if opts == nil {
		opts = &Options{Signer: testKey(1), Now: fixedClock()}
	}
	l, path := openLog(t, opts)
	for i := 0; i < n; i++ {
		if err := l.Append(context.Background(), Entry{Type: "kbs.release", Actor: "test", Secret: "db", Version: i + 1, Decision: "granted"}); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return path
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func join(lines [][]byte) []byte { return bytes.Join(lines, nil) }

func lineOf(err error) int {
	var le *LineError
	if errors.As(err, &le) {
		return le.Line
	}
	return -1
}

func TestVerifyIntact(t *testing.T) {
	for _, every := range []int{0, 1, 3, 100} {
		opts := &Options{Signer: testKey(1), Now: fixedClock(), CheckpointEvery: every}
		path := writeLog(t, 7, opts)
		b, _ := os.ReadFile(path)
		sum, err := Inspect(bytes.NewReader(b), &VerifyOptions{Key: testKey(1).Public().(ed25519.PublicKey)})
		if err != nil {
			t.Fatalf("every=%d: Verify: %v", every, err)
		}
		if sum.Entries != 7 || sum.Unsealed != 0 || sum.Checkpoints == 0 {
			t.Fatalf("every=%d: summary %+v", every, sum)
		}
		if every <= 1 && sum.Checkpoints != 7 {
			t.Fatalf("every=%d: %d checkpoints, want 7", every, sum.Checkpoints)
		}
	}
}

func TestVerifyTampering(t *testing.T) {
	// Checkpoint every 3 entries: lines are 1 header, 2..4 entries,
	// 5 checkpoint, 6..8 entries, 9 checkpoint, 10 entry, 11 checkpoint.
	path := writeLog(t, 7, &Options{Signer: testKey(1), Now: fixedClock(), CheckpointEvery: 3})
	orig := readLines(t, path)
	if len(orig) != 11 {
		t.Fatalf("%d lines, want 11", len(orig))
	}
	clone := func() [][]byte {
		c := make([][]byte, len(orig))
		for i := range orig {
			c[i] = append([]byte(nil), orig[i]...)
		}
		return c
	}
	tests := []struct {
		name     string
		mutate   func() []byte
		opts     *VerifyOptions
		wantLine int
		wantText string
	}{
		{"altered entry", func() []byte {
			c := clone()
			c[2] = bytes.Replace(c[2], []byte(`"version":2`), []byte(`"version":9`), 1)
			return join(c)
		}, nil, 4, "prev hash"},
		{"altered last entry before final checkpoint", func() []byte {
			c := clone()
			c[9] = bytes.Replace(c[9], []byte(`"granted"`), []byte(`"denied"`), 1)
			return join(c)
		}, nil, 11, "prev hash"},
		{"altered checkpoint signature", func() []byte {
			c := clone()
			i := bytes.Index(c[10], []byte(`"sig":"`)) + 7
			if c[10][i] == '0' {
				c[10][i] = '1'
			} else {
				c[10][i] = '0'
			}
			return join(c)
		}, nil, 11, "signature"},
		{"removed entry", func() []byte {
			c := clone()
			return join(append(c[:3], c[4:]...))
		}, nil, 4, "seq"},
		{"reordered entries", func() []byte {
			c := clone()
			c[2], c[3] = c[3], c[2]
			return join(c)
		}, nil, 3, "seq"},
		{"inserted entry", func() []byte {
			c := clone()
			out := append([][]byte{}, c[:3]...)
			out = append(out, c[2])
			return join(append(out, c[3:]...))
		}, nil, 4, "seq"},
		{"inserted forged entry with right seq", func() []byte {
			c := clone()
			forged := []byte(`{"seq":3,"time":"2026-01-02T03:04:09Z","prev":"` + hex.EncodeToString(sum256(c[2])) + `","type":"kbs.release"}` + "\n")
			out := append([][]byte{}, c[:3]...)
			out = append(out, forged)
			return join(append(out, c[3:]...))
		}, nil, 5, "seq"},
		{"truncated last line", func() []byte {
			b := join(clone())
			return b[:len(b)-10]
		}, nil, 11, "incomplete final line"},
		{"removed last line", func() []byte {
			return join(clone()[:10])
		}, nil, 10, "does not end with a signed checkpoint"},
		{"removed header", func() []byte {
			return join(clone()[1:])
		}, nil, 1, "not a header"},
		{"empty", func() []byte { return nil }, nil, 1, "empty log"},
		{"garbage line", func() []byte {
			c := clone()
			c[5] = []byte("not json\n")
			return join(c)
		}, nil, 6, "malformed"},
		{"unknown field", func() []byte {
			c := clone()
			c[5] = bytes.Replace(c[5], []byte(`{"seq"`), []byte(`{"value":"s3cret","seq"`), 1)
			return join(c)
		}, nil, 6, "malformed"},
		{"untrusted key", func() []byte { return join(clone()) },
			&VerifyOptions{Key: testKey(2).Public().(ed25519.PublicKey)}, 1, "not the trusted key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(bytes.NewReader(tc.mutate()), tc.opts)
			if err == nil {
				t.Fatal("Verify accepted a tampered log")
			}
			if got := lineOf(err); got != tc.wantLine {
				t.Errorf("error names line %d, want %d: %v", got, tc.wantLine, err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not contain %q", err, tc.wantText)
			}
		})
	}
}

func sum256(lineWithNL []byte) []byte {
	s := sha256.Sum256(bytes.TrimSuffix(lineWithNL, []byte("\n")))
	return s[:]
}

// TestRewrittenLogNeedsTrustedKey shows what --key is for: a log rewritten
// and re-signed under an attacker's key verifies against its own header,
// and fails against the trusted key.
func TestRewrittenLogNeedsTrustedKey(t *testing.T) {
	forged := writeLog(t, 3, &Options{Signer: testKey(9), Now: fixedClock()})
	b, _ := os.ReadFile(forged)
	if err := Verify(bytes.NewReader(b), nil); err != nil {
		t.Fatalf("self-consistent forged log: %v", err)
	}
	err := Verify(bytes.NewReader(b), &VerifyOptions{Key: testKey(1).Public().(ed25519.PublicKey)})
	if lineOf(err) != 1 {
		t.Fatalf("Verify with trusted key = %v, want a line 1 error", err)
	}
}

func TestVerifyOpenAndHead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := Open(context.Background(), path, &Options{Signer: testKey(1), Now: fixedClock(), CheckpointEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := l.Append(context.Background(), Entry{Type: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	head := l.Head()
	b, _ := os.ReadFile(path)
	if err := Verify(bytes.NewReader(b), nil); !errors.Is(err, ErrUnsealed) || lineOf(err) != 2 {
		t.Fatalf("open log, strict: %v, want ErrUnsealed at line 2", err)
	}
	if err := Verify(bytes.NewReader(b), &VerifyOptions{AllowOpen: true, Head: &head}); err != nil {
		t.Fatalf("open log, AllowOpen: %v", err)
	}
	l.Close()
	// A log cut at a checkpoint boundary is caught only with a head.
	lines := readLines(t, path)
	cut := join(lines[:len(lines)-2])
	if err := Verify(bytes.NewReader(cut), &VerifyOptions{AllowOpen: true, Head: &head}); lineOf(err) != len(lines)-1 {
		t.Fatalf("cut log with head: %v", err)
	}
	bad := head
	bad.Hash[0] ^= 1
	if err := Verify(bytes.NewReader(join(lines)), &VerifyOptions{Head: &bad}); lineOf(err) != 4 {
		t.Fatalf("wrong head hash: %v", err)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	path := writeLog(t, 2, nil)
	l, err := Open(context.Background(), path, &Options{Signer: testKey(1), Now: fixedClock()})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if err := l.Append(context.Background(), Entry{Type: "y", Secret: "db"}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	b, _ := os.ReadFile(path)
	sum, err := Inspect(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatalf("Verify after reopen: %v", err)
	}
	if sum.Entries != 3 {
		t.Fatalf("%d entries, want 3", sum.Entries)
	}
	if _, err := Open(context.Background(), path, &Options{Signer: testKey(2)}); err == nil || !strings.Contains(err.Error(), "not the trusted key") {
		t.Fatalf("Open with another key = %v, want refusal", err)
	}
}

func TestOpenRepairsTornLine(t *testing.T) {
	path := writeLog(t, 2, nil)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":5,"time":"2026-01`)
	f.Close()
	b, _ := os.ReadFile(path)
	if err := Verify(bytes.NewReader(b), nil); !errors.Is(err, ErrTornLine) {
		t.Fatalf("Verify of torn log = %v, want ErrTornLine", err)
	}
	l, err := Open(context.Background(), path, &Options{Signer: testKey(1), Now: fixedClock()})
	if err != nil {
		t.Fatalf("Open of torn log: %v", err)
	}
	l.Close()
	b, _ = os.ReadFile(path)
	sum, err := Inspect(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatalf("Verify after repair: %v", err)
	}
	if sum.Notes != 1 || !bytes.Contains(b, []byte("torn final line of 24 bytes")) {
		t.Fatalf("repair not recorded: %+v\n%s", sum, b)
	}
}

func TestOpenRefusesCorruptLog(t *testing.T) {
	path := writeLog(t, 3, nil)
	lines := readLines(t, path)
	lines[1] = bytes.Replace(lines[1], []byte(`"test"`), []byte(`"evil"`), 1)
	os.WriteFile(path, join(lines), 0o600)
	_, err := Open(context.Background(), path, &Options{Signer: testKey(1)})
	if err == nil || lineOf(err) != 3 {
		t.Fatalf("Open of corrupt log = %v, want refusal naming line 3", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, join(lines)) {
		t.Fatal("Open changed a corrupt log")
	}
}

func TestAppendFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := Open(context.Background(), path, &Options{Signer: testKey(1)})
	if err != nil {
		t.Fatal(err)
	}
	l.f.Close() // the disk goes away
	if err := l.Append(context.Background(), Entry{Type: "x"}); err == nil {
		t.Fatal("Append succeeded with a closed file")
	}
	if err := l.Append(context.Background(), Entry{Type: "x"}); !errors.Is(err, ErrBroken) {
		t.Fatalf("second Append = %v, want ErrBroken", err)
	}
}

func TestAppendRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := Open(context.Background(), path, &Options{Signer: testKey(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, typ := range []string{"", TypeHeader, TypeCheckpoint, TypeNote} {
		if err := l.Append(context.Background(), Entry{Type: typ}); err == nil {
			t.Errorf("Append type %q accepted", typ)
		}
	}
	if err := l.Append(context.Background(), Entry{Type: "x", Reason: strings.Repeat("a", MaxLineSize)}); err == nil {
		t.Error("over-long entry accepted")
	}
	// A caller that went away still leaves its entry (issue 8, #4): the
	// entry records what happened, not a request still in flight.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := l.Head()
	if err := l.Append(ctx, Entry{Type: "x", Reason: "caller gone"}); err != nil {
		t.Errorf("Append with a cancelled context: %v", err)
	}
	if after := l.Head(); after.Seq <= before.Seq {
		t.Errorf("head %v after Append with a cancelled context, want past %v", after, before)
	}
	if _, err := Open(context.Background(), path+"2", nil); err == nil {
		t.Error("Open without a signer succeeded")
	}
}

func TestLinesAreJSONObjects(t *testing.T) {
	path := writeLog(t, 1, nil)
	for i, ln := range readLines(t, path) {
		var m map[string]any
		if err := json.Unmarshal(ln, &m); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		for _, k := range []string{"seq", "time", "prev", "type"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i+1, k, ln)
			}
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("reloaded key differs: %v", err)
	}
	os.WriteFile(path, []byte("zz"), 0o600)
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("bad key file accepted")
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"seq":1,"time":"2026-01-02T03:04:05Z","prev":"00","type":"x","secret":"a","version":2}`))
	f.Add([]byte(`{"seq":0,"time":"2026-01-02T03:04:05Z","prev":"","type":"header","format":"chatmcp/audit/v1","key":"00"}`))
	f.Add([]byte(`{"seq":2,"time":"2026-01-02T03:04:05Z","prev":"00","type":"checkpoint","sig":"00"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseLine(b)
		if err != nil {
			return
		}
		if l.Type == "" || l.Time.IsZero() {
			t.Fatalf("parseLine accepted a line without type or time: %q", b)
		}
	})
}

func FuzzVerify(f *testing.F) {
	path := writeLog(f, 2, nil)
	b, _ := os.ReadFile(path)
	f.Add(b)
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		Verify(bytes.NewReader(b), nil)
	})
}
