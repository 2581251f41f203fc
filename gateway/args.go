package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// The arguments of a tools/call are authorized as decoded here and then
// forwarded as canonicalArgs re-encodes them, never as the client's bytes:
// JSON parsers disagree on duplicate keys (encoding/json keeps the last
// value, many keep the first) and on invalid UTF-8 (replaced, kept or
// refused), so forwarding the raw bytes would let a client get one call
// authorized and another executed. Input those parsers could read two ways
// is refused outright.

// decodeArgs decodes the arguments object (absent or null = empty) and
// returns it with the hex SHA-256 of its canonical encoding. It refuses
// anything but exactly one JSON object, duplicate member names at any
// depth (compared after unescaping) and invalid UTF-8, including lone
// surrogate escapes; the error names the check. For refused input the hash
// is of the raw bytes, for the audit log.
func decodeArgs(raw json.RawMessage) (map[string]any, string, error) {
	args := map[string]any{}
	if len(raw) > 0 && string(raw) != "null" {
		if err := strictArgs(raw); err != nil {
			sum := sha256.Sum256(raw)
			return nil, hex.EncodeToString(sum[:]), err
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&args); err != nil {
			sum := sha256.Sum256(raw)
			return nil, hex.EncodeToString(sum[:]), errors.New("arguments must be a JSON object")
		}
	}
	canon, err := canonicalArgs(args)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(canon)
	return args, hex.EncodeToString(sum[:]), nil
}

// strictArgs checks the syntax decodeArgs requires before encoding/json,
// which is lenient on exactly these points, reads the value.
func strictArgs(raw []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(raw),
		jsontext.AllowDuplicateNames(false),
		jsontext.AllowInvalidUTF8(false))
	if dec.PeekKind() != '{' {
		return errors.New("arguments must be a JSON object")
	}
	if _, err := dec.ReadValue(); err != nil {
		var se *jsontext.SyntacticError
		switch {
		case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &se):
			return fmt.Errorf("arguments must not repeat a key: duplicate key at %q", string(se.JSONPointer))
		case errors.As(err, &se):
			return fmt.Errorf("arguments must be valid JSON in valid UTF-8: %s", strings.TrimPrefix(se.Err.Error(), "jsontext: "))
		}
		return fmt.Errorf("arguments must be valid JSON: %w", err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return errors.New("arguments must be a single JSON object")
	}
	return nil
}

// canonicalArgs is the encoding of args that is hashed, audited and
// forwarded: keys sorted, no insignificant white space, numbers as the
// client wrote them, strings in valid UTF-8.
func canonicalArgs(args map[string]any) (json.RawMessage, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("encoding arguments: %w", err)
	}
	return b, nil
}
