package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options configure a Log.
type Options struct {
	// Signer signs checkpoints; its Public() must be an ed25519.PublicKey.
	// Required.
	Signer crypto.Signer
	// CheckpointEvery is how many entries may go unsealed: an fsync after
	// which this many or more entries would follow the last checkpoint is
	// preceded by a checkpoint (signed and written by the fsync, off the
	// writers' path). If zero, 1: every fsync seals what it makes durable,
	// so the log ends sealed whenever it is on disk and a cut line is
	// detected. Only a process that dies between a write and its fsync
	// leaves unsealed entries; Open seals them.
	CheckpointEvery int
	// Now is the clock stamped on lines. If nil, time.Now.
	Now func() time.Time
	// Observer is told the size of each group commit. If nil, nobody is.
	Observer Observer
	// DeferDelay is the longest a Defer'd entry waits for a Stage or
	// Append to carry it before it is written on its own. If zero, 20ms.
	DeferDelay time.Duration
}

// Observer watches a Log's writes; *ops.Audit implements it.
type Observer interface {
	// Committed is called after each group commit of n entries (one
	// write and fsync), whether or not the write succeeded.
	Committed(n int)
}

// ErrBroken is wrapped by every Append after a failed write: the file's
// tail is unknown, so the log refuses further entries until it is reopened
// (which repairs a torn final line).
var ErrBroken = errors.New("audit log is broken by an earlier write failure")

// Log is an open audit log. It is safe for concurrent use.
//
// Concurrent appends are group-committed: each Append queues its entry and
// then takes the writer lock; whoever holds it writes every queued entry,
// followed by a checkpoint when one is due, in one write and one fsync, and
// hands each waiting Append the result. No Append returns before its entry
// is on disk, so the fail-closed contract is unchanged; only the number of
// fsyncs and signatures per entry drops under load.
type Log struct {
	mu    sync.Mutex // guards queue
	queue []*waiter

	wmu     sync.Mutex // serializes writes; guards the fields below
	f       *os.File
	signer  crypto.Signer
	every   int
	now     func() time.Time
	head    Head
	pending int   // entries since the last checkpoint
	size    int64 // bytes written to the file
	broken  error
	closed  bool
	obs     Observer

	deferDelay time.Duration
	flushArmed bool // guarded by mu: a flush of deferred entries is scheduled

	smu     sync.Mutex // serializes fsyncs; taken before wmu, never under it
	synced  int64      // bytes known durable
	syncErr error      // a failed fsync: nothing later is durable
}

// waiter is one queued Stage, the channel its write's result arrives on,
// and the file size after that write.
type waiter struct {
	ln   *line
	done chan error
	end  int64
}

// Open opens the log at path, creating it (mode 0600, with its header) when
// missing or empty. An existing log is verified in full under the signer's
// key before anything is appended, and Open refuses a corrupt log or one
// signed by another key. A torn final line (no newline, what a crash during
// a write leaves) is cut off and a note recording the cut is appended.
func Open(ctx context.Context, path string, opts *Options) (*Log, error) {
	if opts == nil || opts.Signer == nil {
		return nil, errors.New("opening audit log: no signer")
	}
	pub, ok := opts.Signer.Public().(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("opening audit log: signer key is %T, want ed25519", opts.Signer.Public())
	}
	l := &Log{signer: opts.Signer, every: opts.CheckpointEvery, now: opts.Now, obs: opts.Observer}
	if l.every <= 0 {
		l.every = 1
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.deferDelay = opts.DeferDelay
	if l.deferDelay <= 0 {
		l.deferDelay = 20 * time.Millisecond
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	l.f = f
	if err := l.load(ctx, path, pub); err != nil {
		f.Close()
		return nil, fmt.Errorf("opening audit log %s: %w", path, err)
	}
	return l, nil
}

func (l *Log) load(ctx context.Context, path string, pub ed25519.PublicKey) error {
	data, err := io.ReadAll(l.f)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		hdr, err := l.marshal(&line{Seq: 0, Time: l.now().UTC(), Format: Format, Key: publicKeyHex(pub), Entry: Entry{Type: TypeHeader}})
		if err != nil {
			return err
		}
		if err := l.write(hdr); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			return err
		}
		l.head = Head{Seq: 0, Hash: hashLine(hdr[:len(hdr)-1])}
		l.synced = l.size
		return nil
	}
	var torn int
	if i := bytes.LastIndexByte(data, '\n'); i != len(data)-1 {
		torn = len(data) - (i + 1)
		data = data[:i+1]
	}
	v := &verifier{trusted: pub}
	n := 0
	for len(data) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		i := bytes.IndexByte(data, '\n')
		n++
		if err := v.next(data[:i]); err != nil {
			return fmt.Errorf("refusing to append to a corrupt log: %w", &LineError{Line: n, Err: err})
		}
		data = data[i+1:]
	}
	if n == 0 {
		return fmt.Errorf("refusing to append to a corrupt log: %w", &LineError{Line: 1, Err: ErrTornLine})
	}
	l.head = v.sum.Head
	l.pending = v.sum.Unsealed
	if torn > 0 {
		end, err := l.f.Seek(-int64(torn), io.SeekEnd)
		if err != nil {
			return err
		}
		if err := l.f.Truncate(end); err != nil {
			return fmt.Errorf("cutting torn final line: %w", err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("cutting torn final line: %w", err)
		}
		note := &line{Note: fmt.Sprintf("cut a torn final line of %d bytes left by an interrupted write", torn), Entry: Entry{Type: TypeNote}}
		if err := l.writeLocked([]*line{note}, sealNow); err != nil {
			return err
		}
	} else if l.pending >= l.every {
		if err := l.writeLocked(nil, sealNow); err != nil {
			return err
		}
	}
	// Whatever the file holds now is synced before the first Stage, so
	// every later fsync only covers what this Log wrote.
	size, err := l.f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return err
	}
	l.size, l.synced = size, size
	return nil
}

// Head returns the seq and hash of the last line written.
func (l *Log) Head() Head {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.head
}

// Append writes e, and a checkpoint when one is due, and fsyncs before
// returning. If it returns an error the entry may or may not be in the
// file, and the caller must act as if the action was not recorded: release
// nothing. After a write failure the log is broken (ErrBroken).
//
// Append does not depend on ctx being live: an entry records something that
// happened (often a refusal because the caller went away), so it is written
// even when the caller's context is already cancelled, and Append waits for
// the write whatever ctx does, because the entry may already be on disk.
func (l *Log) Append(ctx context.Context, e Entry) error {
	durable, err := l.Stage(ctx, e)
	if err != nil {
		return err
	}
	return durable()
}

// Stage writes e (and a checkpoint when one is due) to the file and
// starts its fsync, without waiting for it: when Stage returns nil the
// entry is in the operating system's page cache, so it survives the
// process (a crash, a kill) but not yet the machine. durable waits for the
// fsync that covers the entry and returns its error; only after durable
// returns nil is the entry on disk. A caller that acts on an entry before
// it is durable (the gateway forwards a call while its decision entry is
// being synced) must withhold the action's result until durable returns
// nil, and treat an error from durable as "not recorded". After a failed
// write or fsync the log is broken (ErrBroken).
//
// Concurrent Stages are group-committed: whoever takes the writer lock
// writes every queued entry in one write with one checkpoint, and one
// fsync covers every entry written before it started. The writer lock is
// not held during an fsync, so later entries are written while earlier
// ones are synced.
func (l *Log) Stage(ctx context.Context, e Entry) (durable func() error, err error) {
	if e.Type == "" || reservedType(e.Type) {
		return nil, fmt.Errorf("audit: invalid entry type %q", e.Type)
	}
	if err := checkEntry(&e); err != nil {
		return nil, err
	}
	w := &waiter{ln: &line{Entry: e}, done: make(chan error, 1)}
	l.mu.Lock()
	l.queue = append(l.queue, w)
	l.mu.Unlock()

	l.wmu.Lock()
	select {
	case err := <-w.done: // an earlier writer wrote it with its batch
		l.wmu.Unlock()
		return l.syncer(w.end, err)
	default:
	}
	// The checkpoint that seals this write is signed by the fsync that
	// makes it durable (syncTo), off the caller's path.
	l.writeQueuedLocked(sealAtSync)
	l.wmu.Unlock()
	err = <-w.done
	return l.syncer(w.end, err)
}

// seal says when a write is followed by its checkpoint.
type seal int

const (
	sealNow    seal = iota // in the same write, whenever an entry is unsealed
	sealAtSync             // by the next fsync (syncTo), which checkpoints first when one is due
)

// writeQueuedLocked writes every queued entry (and a checkpoint as sl
// says) in one write, and hands each its result and the file size after
// it. The caller holds wmu.
func (l *Log) writeQueuedLocked(sl seal) (end int64, err error) {
	l.mu.Lock()
	batch := l.queue
	l.queue = nil
	l.mu.Unlock()
	if len(batch) == 0 && !(sl == sealNow && l.pending > 0) {
		return l.size, nil
	}
	lines := make([]*line, len(batch))
	for i, b := range batch {
		lines[i] = b.ln
	}
	err = l.writeLocked(lines, sl)
	if l.obs != nil && len(lines) > 0 {
		l.obs.Committed(len(lines))
	}
	for _, b := range batch {
		b.end = l.size
		b.done <- err
	}
	return l.size, err
}

// Defer queues e to be written with the next Stage or Append (in the same
// write, under the same checkpoint and fsync), or at the latest after
// Options.DeferDelay, or by Close; it returns without waiting for any of
// it. It is for entries nothing waits on, such as the outcome of an action
// whose decision entry was already durable: they cost no write, signature
// or fsync of their own. A deferred entry that cannot be written breaks the
// log (ErrBroken), so every later Stage and Append fails; Defer itself
// fails only for an entry Append would refuse before writing.
func (l *Log) Defer(e Entry) error {
	if e.Type == "" || reservedType(e.Type) {
		return fmt.Errorf("audit: invalid entry type %q", e.Type)
	}
	if err := checkEntry(&e); err != nil {
		return err
	}
	w := &waiter{ln: &line{Entry: e}, done: make(chan error, 1)}
	l.mu.Lock()
	l.queue = append(l.queue, w)
	arm := !l.flushArmed
	l.flushArmed = true
	l.mu.Unlock()
	if arm {
		time.AfterFunc(l.deferDelay, l.flushDeferred)
	}
	return nil
}

// flushDeferred writes and syncs what Defer queued and no Stage took.
func (l *Log) flushDeferred() {
	l.mu.Lock()
	l.flushArmed = false
	l.mu.Unlock()
	l.wmu.Lock()
	if l.closed {
		l.wmu.Unlock()
		return
	}
	end, err := l.writeQueuedLocked(sealAtSync)
	l.wmu.Unlock()
	if err == nil {
		l.syncTo(end) // a failure breaks the log
	}
}

// syncer starts the fsync that makes the file durable up to end and
// returns the function that waits for it.
func (l *Log) syncer(end int64, werr error) (func() error, error) {
	if werr != nil {
		return nil, werr
	}
	res := make(chan error, 1)
	go func() { res <- l.syncTo(end) }()
	return sync.OnceValue(func() error { return <-res }), nil
}

// syncTo returns once the file is fsynced up to end: at once when an
// earlier fsync covered it, otherwise after one fsync covering everything
// written so far. A failed fsync breaks the log.
func (l *Log) syncTo(end int64) error {
	l.smu.Lock()
	defer l.smu.Unlock()
	if l.synced >= end {
		return nil
	}
	if l.syncErr != nil {
		return fmt.Errorf("audit: %w: %v", ErrBroken, l.syncErr)
	}
	l.wmu.Lock()
	if !l.closed && l.broken == nil && l.pending >= l.every {
		// Seal what Stage wrote before it becomes durable.
		if err := l.writeLocked(nil, sealNow); err != nil {
			l.wmu.Unlock()
			return err
		}
	}
	target, f := l.size, l.f
	closed := l.closed
	l.wmu.Unlock()
	if closed {
		// Close synced before it closed (a failure there set syncErr,
		// checked above): everything written is durable.
		l.synced = target
		return nil
	}
	if err := f.Sync(); err != nil {
		l.syncErr = err
		l.wmu.Lock()
		if l.broken == nil {
			l.broken = err
		}
		l.wmu.Unlock()
		return fmt.Errorf("audit: syncing: %w", err)
	}
	l.synced = target
	return nil
}

// lineOverhead bounds what a line adds to its entry's strings: field
// names, quotes, seq, time and prev.
const lineOverhead = 1024

// checkEntry rejects, before it joins a batch, an entry that cannot be
// written: its line would exceed MaxLineSize, or its Arguments are not
// JSON. One such entry then fails alone instead of failing every entry
// group-committed with it.
func checkEntry(e *Entry) error {
	if len(e.Arguments) > 0 && !json.Valid(e.Arguments) {
		return errors.New("audit: entry arguments are not valid JSON")
	}
	n := len(e.Type) + len(e.Actor) + len(e.Principal) + len(e.Action) + len(e.Decision) + len(e.Reason) +
		len(e.TEE) + len(e.Measurement) + len(e.Secret) + len(e.PolicySHA256) + len(e.Tool) + len(e.Upstream) +
		len(e.ArgsSHA256) + len(e.Arguments) + len(e.Request) + len(e.TokenChain)
	// JSON escaping makes a byte at most 6 ("\u00XX"): below this bound
	// no encoding is needed to know the line fits.
	if 6*n+lineOverhead <= MaxLineSize {
		return nil
	}
	b, err := json.Marshal(&line{Seq: ^uint64(0), Time: time.Now().UTC(), Prev: strings.Repeat("0", 64), Entry: *e})
	if err != nil {
		return fmt.Errorf("audit: encoding line: %w", err)
	}
	if len(b) > MaxLineSize {
		return fmt.Errorf("audit: line of %d bytes exceeds %d", len(b), MaxLineSize)
	}
	return nil
}

// writeLocked writes entries followed by a checkpoint as sl says, as one
// write (no fsync). The caller holds wmu.
func (l *Log) writeLocked(entries []*line, sl seal) error {
	if l.closed {
		return errors.New("audit: log is closed")
	}
	if l.broken != nil {
		return fmt.Errorf("audit: %w: %v", ErrBroken, l.broken)
	}
	now := l.now().UTC()
	head, pending := l.head, l.pending
	var buf []byte
	for _, entry := range entries {
		entry.Seq, entry.Time, entry.Prev = head.Seq+1, now, hex.EncodeToString(head.Hash[:])
		b, err := l.marshal(entry)
		if err != nil {
			return err
		}
		buf = append(buf, b...)
		head = Head{Seq: entry.Seq, Hash: hashLine(b[:len(b)-1])}
		pending++
	}
	if sl == sealNow && pending > 0 {
		seq := head.Seq + 1
		sig, err := l.signer.Sign(nil, checkpointMessage(seq, head.Hash), crypto.Hash(0))
		if err != nil {
			return fmt.Errorf("audit: signing checkpoint: %w", err)
		}
		b, err := l.marshal(&line{Seq: seq, Time: now, Prev: hex.EncodeToString(head.Hash[:]), Sig: hex.EncodeToString(sig), Entry: Entry{Type: TypeCheckpoint}})
		if err != nil {
			return err
		}
		buf = append(buf, b...)
		head = Head{Seq: seq, Hash: hashLine(b[:len(b)-1])}
		pending = 0
	}
	if len(buf) == 0 {
		return nil
	}
	if err := l.writeNoSync(buf); err != nil {
		l.broken = err
		return fmt.Errorf("audit: writing: %w", err)
	}
	l.head, l.pending = head, pending
	return nil
}

func (l *Log) marshal(ln *line) ([]byte, error) {
	b, err := json.Marshal(ln)
	if err != nil {
		return nil, fmt.Errorf("audit: encoding line: %w", err)
	}
	if len(b) > MaxLineSize {
		return nil, fmt.Errorf("audit: line of %d bytes exceeds %d", len(b), MaxLineSize)
	}
	return append(b, '\n'), nil
}

func (l *Log) write(b []byte) error {
	if err := l.writeNoSync(b); err != nil {
		return err
	}
	return l.f.Sync()
}

// writeNoSync appends b at the end of the file and records the new size;
// the caller holds wmu (or has the log to itself while opening it).
func (l *Log) writeNoSync(b []byte) error {
	off, err := l.f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if _, err := l.f.Write(b); err != nil {
		return err
	}
	l.size = off + int64(len(b))
	return nil
}

// Close writes a final checkpoint if entries follow the last one, syncs and
// closes the file.
func (l *Log) Close() error {
	l.smu.Lock()
	defer l.smu.Unlock()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return nil
	}
	var err error
	if l.broken == nil {
		// Deferred entries, and Stages that queued but had not taken
		// the writer lock, are written now with the final checkpoint.
		_, err = l.writeQueuedLocked(sealNow)
	}
	if serr := l.f.Sync(); serr != nil {
		l.syncErr = serr // a durable waited after Close reports it
		if err == nil {
			err = fmt.Errorf("audit: syncing: %w", serr)
		}
	}
	l.closed = true
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
