package mcpbridge

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Mcp-Param-* headers (MCP 2026-07-28, SEP-2243). A tool's input schema may
// mark an argument with "x-mcp-header": NAME; a stateless tools/call of it
// must then carry that argument's value in the header Mcp-Param-NAME as
// well, and a server refuses the call (400) when the header is missing or
// differs from the body. The bridge relays a desktop client's messages as
// they are, so it learns the marks from the tools/list results it relays
// and sets the headers on the calls that follow. A call of a tool the
// bridge has not seen listed goes without them, as from a client that never
// listed.

// paramBinding is one marked argument: its path in the arguments (nested
// object properties) and its header's NAME.
type paramBinding struct {
	path   []string
	header string
}

// paramPrefix is the header prefix of a marked argument.
const paramPrefix = "Mcp-Param-"

// The wrapper of a base64-encoded header value.
const (
	b64Prefix = "=?base64?"
	b64Suffix = "?="
)

// maxSafeInt bounds the integers a header may carry (those an IEEE-754
// double holds exactly).
const maxSafeInt = 1<<53 - 1

// schemaProperty is what the bridge reads of a property of an input schema.
type schemaProperty struct {
	Header     json.RawMessage           `json:"x-mcp-header"`
	Properties map[string]schemaProperty `json:"properties"`
}

// bindingsOf returns the marked arguments of an input schema; none for a
// schema it cannot read.
func bindingsOf(schema json.RawMessage) []paramBinding {
	var s schemaProperty
	if json.Unmarshal(schema, &s) != nil {
		return nil
	}
	return collectBindings(s.Properties, nil, nil)
}

func collectBindings(props map[string]schemaProperty, prefix []string, out []paramBinding) []paramBinding {
	for name, p := range props {
		path := append(append([]string(nil), prefix...), name)
		var h string
		if json.Unmarshal(p.Header, &h) == nil && h != "" {
			out = append(out, paramBinding{path: path, header: h})
		}
		out = collectBindings(p.Properties, path, out)
	}
	return out
}

// learnTools records the marked arguments of every tool in a tools/list
// result; a tool listed without marks forgets any it had.
func (b *bridge) learnTools(result json.RawMessage) {
	var r struct {
		Tools []struct {
			Name        string          `json:"name"`
			InputSchema json.RawMessage `json:"inputSchema"`
		} `json:"tools"`
	}
	if json.Unmarshal(result, &r) != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.paramBindings == nil {
		b.paramBindings = map[string][]paramBinding{}
	}
	for _, t := range r.Tools {
		if bs := bindingsOf(t.InputSchema); len(bs) > 0 {
			b.paramBindings[t.Name] = bs
		} else {
			delete(b.paramBindings, t.Name)
		}
	}
}

// paramHeaders returns the Mcp-Param-* headers of a tools/call of tool
// with params: for each marked argument present, not null and of a type a
// header carries (string, boolean, safe integer), its value.
func (b *bridge) paramHeaders(tool string, params json.RawMessage) map[string]string {
	b.mu.Lock()
	bs := b.paramBindings[tool]
	b.mu.Unlock()
	if len(bs) == 0 {
		return nil
	}
	var p struct {
		Arguments map[string]json.RawMessage `json:"arguments"`
	}
	if json.Unmarshal(params, &p) != nil || p.Arguments == nil {
		return nil
	}
	out := map[string]string{}
	for _, bd := range bs {
		raw, ok := argumentAt(p.Arguments, bd.path)
		if !ok {
			continue
		}
		if v, ok := headerValue(raw); ok {
			out[paramPrefix+bd.header] = v
		}
	}
	return out
}

// argumentAt returns the argument at path, descending through objects.
func argumentAt(args map[string]json.RawMessage, path []string) (json.RawMessage, bool) {
	cur, ok := args[path[0]]
	for _, part := range path[1:] {
		var obj map[string]json.RawMessage
		if !ok || json.Unmarshal(cur, &obj) != nil {
			return nil, false
		}
		cur, ok = obj[part]
	}
	return cur, ok
}

// headerValue encodes a primitive argument as its header value: a string
// as it is, unless it has a character outside printable ASCII, leading or
// trailing blanks, or looks like an encoded value, then base64 in the
// =?base64?…?= wrapper; a boolean as true or false; an integer within
// ±(2^53−1) in decimal. Anything else has no header value.
func headerValue(raw json.RawMessage) (string, bool) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		if needsBase64(v) {
			return b64Prefix + base64.StdEncoding.EncodeToString([]byte(v)) + b64Suffix, true
		}
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > maxSafeInt {
			return "", false
		}
		return strconv.FormatInt(int64(v), 10), true
	}
	return "", false
}

func needsBase64(s string) bool {
	if s == "" {
		return false
	}
	if first, last := s[0], s[len(s)-1]; first == ' ' || first == '\t' || last == ' ' || last == '\t' {
		return true
	}
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return true
		}
	}
	return strings.HasPrefix(s, b64Prefix) && strings.HasSuffix(s, b64Suffix)
}
