// Package wire decodes untrusted JSON strictly: unknown fields, duplicate
// names, trailing data, over-deep nesting and oversized input are errors.
package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxDepth is the deepest nesting of objects and arrays Decode accepts.
const MaxDepth = 32

// ErrTooLarge is returned when input exceeds the caller's size limit.
var ErrTooLarge = errors.New("input too large")

// Decode parses exactly one JSON value from data into v. It rejects unknown
// object members, duplicate member names, invalid UTF-8, nesting deeper than
// MaxDepth, and anything after the value other than white space.
func Decode(data []byte, v any) error {
	if err := checkDepth(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v,
		json.RejectUnknownMembers(true),
		jsontext.AllowDuplicateNames(false),
		jsontext.AllowInvalidUTF8(false),
	)
}

// Read reads at most limit bytes from r and decodes them with Decode. Input
// longer than limit fails with an error wrapping ErrTooLarge.
func Read(r io.Reader, limit int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return Decode(data, v)
}

// checkDepth scans tokens once so that deep nesting is refused before any
// allocation proportional to it happens in the unmarshaler.
func checkDepth(data []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		switch tok.Kind() {
		case '{', '[':
			if dec.StackDepth() > MaxDepth {
				return fmt.Errorf("invalid JSON: nesting deeper than %d", MaxDepth)
			}
		}
	}
}
