package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/chatmcp/chatmcp/internal/wire"
)

// LineError is a verification failure at a 1-based line number: the first
// line that cannot be trusted.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ErrTornLine is wrapped by the error for a final line without its newline:
// what a crash in the middle of a write leaves. Open repairs it; Verify
// reports it.
var ErrTornLine = errors.New("incomplete final line (no newline): torn write or truncated log")

// ErrUnsealed is wrapped by the error for a log that does not end with a
// checkpoint when VerifyOptions.AllowOpen is false.
var ErrUnsealed = errors.New("log does not end with a signed checkpoint: entries from here on may have been altered, or lines cut off the end")

// VerifyOptions tune Verify. The zero value (or nil) verifies a closed log
// against the key named in its own header.
type VerifyOptions struct {
	// Key is the trusted public key. If nil, the key in the header is used,
	// which detects accidental damage and any edit by someone without the
	// key, but not a log rewritten and re-signed under a new key.
	Key ed25519.PublicKey
	// AllowOpen accepts a log whose last lines follow its last checkpoint
	// (a log still being written with CheckpointEvery > 1). If false, such
	// a log fails with ErrUnsealed.
	AllowOpen bool
	// Head, if non-nil, is a head recorded earlier: the log must contain a
	// line with that seq and hash. If nil, not checked.
	Head *Head
}

// Summary describes a verified log.
type Summary struct {
	Lines       int
	Entries     int // caller entries (not header, checkpoint or note)
	Checkpoints int
	Notes       int
	Key         ed25519.PublicKey
	Head        Head
	// Unsealed counts lines after the last checkpoint.
	Unsealed int
}

// Verify checks the log read from r and returns nil when it is intact, or a
// *LineError naming the first bad line.
func Verify(r io.Reader, opts *VerifyOptions) error {
	_, err := Inspect(r, opts)
	return err
}

// Inspect is Verify that also returns a summary of an intact log.
func Inspect(r io.Reader, opts *VerifyOptions) (*Summary, error) {
	if opts == nil {
		opts = &VerifyOptions{}
	}
	v := &verifier{trusted: opts.Key}
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	headSeen := opts.Head == nil
	for {
		raw, err := readLine(br)
		if err == io.EOF {
			break
		}
		n++
		if err != nil {
			return nil, &LineError{Line: n, Err: err}
		}
		if err := v.next(raw); err != nil {
			return nil, &LineError{Line: n, Err: err}
		}
		if !headSeen && v.sum.Head.Seq == opts.Head.Seq {
			if v.sum.Head.Hash != opts.Head.Hash {
				return nil, &LineError{Line: n, Err: fmt.Errorf("hash differs from the recorded head %s", opts.Head)}
			}
			headSeen = true
		}
	}
	if n == 0 {
		return nil, &LineError{Line: 1, Err: errors.New("empty log: no header")}
	}
	if !headSeen {
		return nil, &LineError{Line: n + 1, Err: fmt.Errorf("log ends before the recorded head %s: lines were cut off the end", opts.Head)}
	}
	if v.sum.Unsealed > 0 && !opts.AllowOpen {
		return nil, &LineError{Line: n - v.sum.Unsealed + 1, Err: ErrUnsealed}
	}
	v.sum.Lines = n
	return &v.sum, nil
}

// readLine returns the next line without its newline, io.EOF at a clean end,
// or an error for a torn final line or an over-long line.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) > MaxLineSize+1 {
			return nil, fmt.Errorf("line longer than %d bytes", MaxLineSize)
		}
		buf = append(buf, frag...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(buf) == 0 {
				return nil, io.EOF
			}
			return nil, ErrTornLine
		default:
			return nil, fmt.Errorf("reading: %w", err)
		}
	}
}

// verifier walks the chain one line at a time. It is shared by Inspect and
// by Open, which replays an existing log before appending to it.
type verifier struct {
	trusted ed25519.PublicKey
	key     ed25519.PublicKey
	prev    [sha256.Size]byte
	sum     Summary
	last    *line
}

func (v *verifier) next(raw []byte) error {
	l, err := parseLine(raw)
	if err != nil {
		return err
	}
	if v.key == nil {
		if err := v.header(l); err != nil {
			return err
		}
	} else {
		if l.Type == TypeHeader {
			return errors.New("a second header")
		}
		if want := v.sum.Head.Seq + 1; l.Seq != want {
			return fmt.Errorf("seq %d, want %d: a line was removed, reordered or inserted", l.Seq, want)
		}
		if l.Prev != hex.EncodeToString(v.prev[:]) {
			return errors.New("prev hash does not match the line before: that line was altered, or lines were removed, reordered or inserted")
		}
		switch l.Type {
		case TypeCheckpoint:
			sig, err := hex.DecodeString(l.Sig)
			if err != nil || len(sig) != ed25519.SignatureSize {
				return errors.New("checkpoint signature is not 64 hex-encoded bytes")
			}
			if !ed25519.Verify(v.key, checkpointMessage(l.Seq, v.prev), sig) {
				return errors.New("checkpoint signature does not verify under the log key")
			}
			v.sum.Checkpoints++
			v.sum.Unsealed = -1
		case TypeNote:
			v.sum.Notes++
		default:
			v.sum.Entries++
		}
	}
	v.sum.Unsealed++
	v.prev = hashLine(raw)
	v.sum.Head = Head{Seq: l.Seq, Hash: v.prev}
	v.last = l
	return nil
}

func (v *verifier) header(l *line) error {
	if l.Type != TypeHeader || l.Seq != 0 || l.Prev != "" {
		return errors.New("first line is not a header (type header, seq 0, empty prev)")
	}
	if l.Format != Format {
		return fmt.Errorf("header format %q, want %q", l.Format, Format)
	}
	k, err := hex.DecodeString(l.Key)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return errors.New("header key is not a hex Ed25519 public key")
	}
	if v.trusted != nil && !bytes.Equal(k, v.trusted) {
		return fmt.Errorf("log key %s is not the trusted key %s", l.Key, publicKeyHex(v.trusted))
	}
	v.key = ed25519.PublicKey(k)
	v.sum.Key = v.key
	v.sum.Unsealed = -1 // the header itself is not an unsealed entry
	return nil
}

// parseLine decodes one line strictly and checks the fields its type needs.
func parseLine(raw []byte) (*line, error) {
	if len(raw) > MaxLineSize {
		return nil, fmt.Errorf("line longer than %d bytes", MaxLineSize)
	}
	var l line
	if err := wire.Decode(raw, &l); err != nil {
		return nil, fmt.Errorf("malformed entry: %w", err)
	}
	if l.Type == "" {
		return nil, errors.New("malformed entry: no type")
	}
	if l.Time.IsZero() {
		return nil, errors.New("malformed entry: no time")
	}
	switch l.Type {
	case TypeHeader:
		if l.Sig != "" || l.Note != "" {
			return nil, errors.New("malformed header: unexpected fields")
		}
	case TypeCheckpoint:
		if l.Key != "" || l.Format != "" || l.Note != "" || l.Sig == "" {
			return nil, errors.New("malformed checkpoint: want sig and no other fields")
		}
	default:
		if l.Key != "" || l.Format != "" || l.Sig != "" {
			return nil, errors.New("malformed entry: header or checkpoint fields in an entry")
		}
	}
	return &l, nil
}
