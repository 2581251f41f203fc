// Package catalog names the tools the gateway exposes and pins their
// definitions: each definition's canonical hash is recorded on first sight
// in a pins file, and a changed definition is held back (not listed, not
// callable) until an operator approves it.
package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/internal/keyfile"
)

// MaxNameLen is the longest exposed name; LLM tool-name rules allow 64.
const MaxNameLen = 64

var validName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// ValidName reports whether s matches ^[a-zA-Z0-9_-]{1,64}$.
func ValidName(s string) bool { return validName.MatchString(s) }

// ExposedName returns the name under which upstream's tool (or prompt or
// resource) named name is exposed: "<upstream>_<name>" when that is a valid
// name, and otherwise the name with every other character replaced by "_",
// cut to fit, followed by "_" and 8 hex digits of the SHA-256 of the
// original name. It is deterministic and depends on nothing else, so a
// name never changes when other tools come or go; a suffixed name can only
// collide with another name by a SHA-256 coincidence, and callers drop any
// collision anyway (Resolve).
func ExposedName(upstream, name string) string { return Expose(upstream+"_", name) }

// Expose returns the name under which a tool (or prompt or resource) named
// name is exposed with prefix (an upstream's configured "prefix:", by
// default "<upstream>_"): prefix+name when that is a valid name, otherwise
// the same replacement and hash suffix as ExposedName. An empty prefix
// exposes valid names as they are.
func Expose(prefix, name string) string {
	full := prefix + name
	if ValidName(full) {
		return full
	}
	b := []byte(full)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "_" + hex.EncodeToString(sum[:4])
	if len(b) > MaxNameLen-len(suffix) {
		b = b[:MaxNameLen-len(suffix)]
	}
	return string(b) + suffix
}

// Resolve maps the upstream names to exposed names, dropping (and
// reporting) every name that collides with an earlier one in sorted order
// of the originals.
func Resolve(upstream string, names []string) (exposed map[string]string, dropped []string) {
	return ResolvePrefix(upstream+"_", names)
}

// ResolvePrefix is Resolve for names exposed with prefix (Expose).
func ResolvePrefix(prefix string, names []string) (exposed map[string]string, dropped []string) {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	exposed = make(map[string]string, len(sorted))
	taken := make(map[string]bool, len(sorted))
	for _, n := range sorted {
		e := Expose(prefix, n)
		if taken[e] {
			dropped = append(dropped, n)
			continue
		}
		taken[e] = true
		exposed[n] = e
	}
	return exposed, dropped
}

// Hash returns the hex SHA-256 of the canonical JSON of the parts of t a
// model or a person relies on: name, title, description, input and output
// schemas and annotations. Canonical means object keys sorted, no
// insignificant white space, numbers as written by the upstream.
func Hash(t *mcp.Tool) (string, error) {
	b, err := Canonical(t)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Canonical returns the canonical JSON that Hash hashes.
func Canonical(t *mcp.Tool) ([]byte, error) {
	def := struct {
		Name         string               `json:"name"`
		Title        string               `json:"title,omitempty"`
		Description  string               `json:"description,omitempty"`
		InputSchema  any                  `json:"inputSchema"`
		OutputSchema any                  `json:"outputSchema,omitempty"`
		Annotations  *mcp.ToolAnnotations `json:"annotations,omitempty"`
	}{t.Name, t.Title, t.Description, t.InputSchema, t.OutputSchema, t.Annotations}
	raw, err := json.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("encoding tool %q: %w", t.Name, err)
	}
	// Re-encoding a generic value sorts every object's keys; UseNumber
	// keeps numbers as the upstream wrote them.
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonicalizing tool %q: %w", t.Name, err)
	}
	return json.Marshal(v)
}

// State is what the pins say about a definition.
type State int

const (
	// Pinned: the definition matches its pin (or was pinned just now).
	Pinned State = iota
	// Changed: the definition differs from its pin; the tool is disabled
	// until Approve.
	Changed
)

// Pending is a changed definition waiting for approval.
type Pending struct {
	Name      string `json:"name"`
	OldSHA256 string `json:"old_sha256"`
	// OldDefinition is the pinned canonical definition (the one with
	// OldSHA256), for a diff. Nil when the pins file did not record it
	// (written before definitions were kept).
	OldDefinition json.RawMessage `json:"old_definition,omitempty"`
	NewSHA256     string          `json:"new_sha256"`
	Definition    json.RawMessage `json:"definition"`
	Seen          time.Time       `json:"seen"`
}

// pinsFile is the on-disk form. Definitions was added later: a file
// without it still loads, and a pinned definition seen again unchanged is
// recorded then.
type pinsFile struct {
	Pins map[string]string `json:"pins"`
	// Definitions holds each pin's canonical definition, by name.
	Definitions map[string]json.RawMessage `json:"definitions,omitempty"`
	Pending     map[string]*Pending        `json:"pending,omitempty"`
}

// Errors of Approve. Each leaves the pins as they were.
var (
	// ErrNotPending: the name has no pending change.
	ErrNotPending = errors.New("no pending change for this tool")
	// ErrSHA256Required: the approval names no definition hash, or one that
	// is not 64 hex digits.
	ErrSHA256Required = errors.New("approval must name the sha256 of the reviewed definition (64 hex digits)")
	// ErrSHA256Mismatch: the pending definition no longer has the hash the
	// approval names; it changed after it was reviewed.
	ErrSHA256Mismatch = errors.New("the pending definition is not the one reviewed")
)

// Pins is the pin store, kept in memory and written through to a JSON file
// (atomically: temporary file, fsync, rename). It is safe for concurrent use.
type Pins struct {
	path string
	now  func() time.Time

	mu sync.Mutex
	f  pinsFile
}

// OpenPins loads the pins file at path, or starts empty when it does not
// exist. now is the clock; if nil, time.Now.
func OpenPins(path string, now func() time.Time) (*Pins, error) {
	if now == nil {
		now = time.Now
	}
	p := &Pins{path: path, now: now, f: pinsFile{Pins: map[string]string{}, Definitions: map[string]json.RawMessage{}, Pending: map[string]*Pending{}}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pins: %w", err)
	}
	if err := json.Unmarshal(b, &p.f); err != nil {
		return nil, fmt.Errorf("parsing pins %s: %w", path, err)
	}
	if p.f.Pins == nil {
		p.f.Pins = map[string]string{}
	}
	if p.f.Pending == nil {
		p.f.Pending = map[string]*Pending{}
	}
	if p.f.Definitions == nil {
		p.f.Definitions = map[string]json.RawMessage{}
	}
	// The file is indented; a definition is shown and compared in its
	// canonical (compact) form.
	for n, d := range p.f.Definitions {
		p.f.Definitions[n] = compact(d)
	}
	for _, pd := range p.f.Pending {
		pd.OldDefinition, pd.Definition = compact(pd.OldDefinition), compact(pd.Definition)
	}
	return p, nil
}

// compact removes the pins file's indentation from a definition.
func compact(d json.RawMessage) json.RawMessage {
	if d == nil {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, d); err != nil {
		return d
	}
	return b.Bytes()
}

// Check compares the definition exposed as name with its pin. On first
// sight it pins it; a difference records a pending change and returns
// Changed. t is the definition as the upstream sent it.
func (p *Pins) Check(name string, t *mcp.Tool) (State, error) {
	def, err := Canonical(t)
	if err != nil {
		return Changed, err
	}
	sum := sha256.Sum256(def)
	h := hex.EncodeToString(sum[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	old, ok := p.f.Pins[name]
	switch {
	case !ok:
		p.f.Pins[name] = h
		p.f.Definitions[name] = def
		delete(p.f.Pending, name)
		return Pinned, p.saveLocked()
	case old == h:
		_, had := p.f.Pending[name]
		_, recorded := p.f.Definitions[name]
		if had || !recorded {
			// The upstream went back to the pinned definition, or a pins
			// file from before definitions were kept gets this one: its
			// hash is the pin.
			delete(p.f.Pending, name)
			p.f.Definitions[name] = def
			return Pinned, p.saveLocked()
		}
		return Pinned, nil
	}
	if cur, ok := p.f.Pending[name]; ok && cur.NewSHA256 == h {
		return Changed, nil
	}
	p.f.Pending[name] = &Pending{Name: name, OldSHA256: old, OldDefinition: p.f.Definitions[name], NewSHA256: h, Definition: def, Seen: p.now().UTC()}
	return Changed, p.saveLocked()
}

// Pending lists the changed definitions, sorted by name.
func (p *Pins) Pending() []Pending {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Pending, 0, len(p.f.Pending))
	for _, v := range p.f.Pending {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Approve pins the pending definition of name, provided that its hash is
// sha256 (hex), the new_sha256 that Pending showed the operator. A
// definition that changes between review and approval replaces the pending
// one, so an approval naming the reviewed hash fails with
// ErrSHA256Mismatch instead of pinning a definition nobody saw.
func (p *Pins) Approve(name, sha256 string) error {
	if !validSHA256(sha256) {
		return ErrSHA256Required
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pd, ok := p.f.Pending[name]
	if !ok {
		return ErrNotPending
	}
	if !strings.EqualFold(pd.NewSHA256, sha256) {
		return fmt.Errorf("%w: %s is pending with sha256 %s, the approval names %s; review it again",
			ErrSHA256Mismatch, name, pd.NewSHA256, strings.ToLower(sha256))
	}
	p.f.Pins[name] = pd.NewSHA256
	p.f.Definitions[name] = pd.Definition
	delete(p.f.Pending, name)
	return p.saveLocked()
}

func validSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func (p *Pins) saveLocked() error {
	b, err := json.MarshalIndent(&p.f, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding pins: %w", err)
	}
	return keyfile.WriteAtomic(p.path, append(b, '\n'), 0o600)
}
