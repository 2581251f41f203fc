package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Default values of optional configuration keys.
const (
	DefaultListen          = "127.0.0.1:8443"
	DefaultData            = "./gateway-data"
	DefaultApprovalTimeout = 2 * time.Minute
	// DefaultCallTimeout is the deadline of a forwarded request when its
	// upstream sets no call_timeout.
	DefaultCallTimeout = 5 * time.Minute
)

// upstreamName restricts upstream names so that the prefix of an exposed
// name ("<upstream>_") is unambiguous: no underscore inside the name.
var upstreamName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{0,31}$`)

// upstreamPrefix is what an upstream's prefix may hold: characters valid
// in exposed names (catalog.ValidName), possibly none.
var upstreamPrefix = regexp.MustCompile(`^[a-zA-Z0-9_-]{0,32}$`)

// headerName is an HTTP token (RFC 9110).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")

// envName is a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// secretName is the shape of a KBS secret or layer-2 credential name.
var secretName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Config is a gateway configuration file (docs/gateway.md). Relative paths
// in it are resolved against the directory of the file by LoadConfig.
type Config struct {
	// Listen is the TCP address of the TLS listener. If empty, DefaultListen.
	Listen string `yaml:"listen"`
	// Data is the data directory (pins, audit log, admin token, token key,
	// database). If empty, DefaultData.
	Data string `yaml:"data"`
	// KBS is the base URL of the key broker that holds layer-1 secrets.
	// Required when any upstream refers to {secret: NAME}.
	KBS string `yaml:"kbs"`
	// ApprovalTimeout is how long a gated call waits for a person. If zero,
	// DefaultApprovalTimeout.
	ApprovalTimeout Duration `yaml:"approval_timeout"`
	// Policy is a Cedar policy file. If empty, only capability tokens decide.
	Policy string `yaml:"policy"`
	// AuditArguments records call arguments (redacted of layer-1 values) in
	// the audit log instead of only their SHA-256. If false, hashes only.
	AuditArguments bool `yaml:"audit_arguments"`
	// Database is a postgres:// DSN shared by gateway replicas (token
	// revocations). If empty, SQLite in Data/gateway.db.
	Database string `yaml:"database"`
	// Revocations tunes how replicas follow each other's revocations.
	// Zero values are the documented defaults.
	Revocations RevocationConfig `yaml:"revocations"`
	// AllowedHosts are the host names (or host:port) that requests may
	// name in Host and Origin besides the listen address (hostcheck.go).
	// If empty, only the listen address, and loopback names when it is a
	// loopback address.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Upstreams are the MCP servers the gateway aggregates, by name.
	Upstreams map[string]*Upstream `yaml:"upstreams"`
	// Facilitator is the x402 facilitator paid tools settle through
	// (call_pay.go). Required when an upstream prices a tool.
	Facilitator *FacilitatorConfig `yaml:"facilitator"`
}

// Upstream is one MCP server: a command run over stdio, or a streamable
// HTTP URL. Exactly one of Command and URL is set.
type Upstream struct {
	// Command and Args run a stdio MCP server. Its environment is PATH,
	// HOME, TMPDIR and LANG from the gateway's, plus Env.
	Command string           `yaml:"command"`
	Args    []string         `yaml:"args"`
	Env     map[string]Value `yaml:"env"`
	// URL is a streamable-HTTP MCP endpoint; Headers are sent with every
	// request to it.
	URL     string           `yaml:"url"`
	Headers map[string]Value `yaml:"headers"`
	// CallerElicitationApproves lets the calling client's own session
	// approve a held call of this upstream's tools by answering the
	// elicitation form. RISK: whoever holds the token (a compromised or
	// prompt-injected agent included) can then approve its own writes. If
	// false (the default), elicitation only tells the caller where the
	// call waits, and approvals come from the admin API alone.
	CallerElicitationApproves bool `yaml:"caller_elicitation_approves"`
	// Prefix is put before the upstream's tool, prompt and resource names
	// to expose them (catalog.Expose). If nil, "<name>_"; an empty string
	// exposes the names as they are. Exposed tool and prompt names that
	// collide stop the start (names.go).
	Prefix *string `yaml:"prefix"`
	// CallTimeout bounds every request the gateway forwards to this
	// upstream (tool calls, reads, prompts, completions); at the deadline
	// the upstream gets notifications/cancelled and the caller an error. If
	// zero, DefaultCallTimeout.
	CallTimeout Duration `yaml:"call_timeout"`
	// ProtocolVersion is the MCP revision the gateway asks this upstream
	// for (one of ProtocolVersions). If empty, the newest, falling back to
	// what the upstream answers. Pin an older one for a server that claims
	// 2026-07-28 but still sends requests (elicitation, sampling) on it,
	// which the SDK's 2026-07-28 client refuses.
	ProtocolVersion string `yaml:"protocol_version"`
	// Prices make tools of this upstream paid (x402 `exact`), by pattern
	// over the upstream's own tool names; the first match applies. If
	// empty, every tool is free.
	Prices []ToolPrice `yaml:"prices"`
	// Name is the upstream's key in Config.Upstreams, set by ParseConfig.
	Name string `yaml:"-"`
}

// Value is a configuration value: a literal string, a layer-1 secret
// fetched from the KBS ({secret: NAME}), or a layer-2 credential supplied by
// the calling principal ({credential: NAME}). Format, when set, must contain
// "{}" once, which is replaced by the secret or credential.
type Value struct {
	Literal    string
	Secret     string
	Credential string
	Format     string

	set bool // false for a YAML null, which yaml.v3 never hands to UnmarshalYAML
}

// Duration is a time.Duration written as "2m", "90s".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: duration must be a string like \"2m\"", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML accepts a scalar or a mapping with exactly the keys secret
// or credential, and optionally format.
func (v *Value) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return fmt.Errorf("line %d: empty value", n.Line)
		}
		*v = Value{Literal: n.Value, set: true}
		return nil
	case yaml.MappingNode:
	default:
		return fmt.Errorf("line %d: value must be a string or {secret: NAME} or {credential: NAME}", n.Line)
	}
	var out Value
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
		}
		seen[k.Value] = true
		if val.Kind != yaml.ScalarNode || val.Tag == "!!null" {
			return fmt.Errorf("line %d: %s must be a string", val.Line, k.Value)
		}
		switch k.Value {
		case "secret":
			out.Secret = val.Value
		case "credential":
			out.Credential = val.Value
		case "format":
			out.Format = val.Value
		default:
			return fmt.Errorf("line %d: field %s not allowed in a value (secret, credential, format)", k.Line, k.Value)
		}
	}
	switch {
	case out.Secret != "" && out.Credential != "":
		return fmt.Errorf("line %d: a value is either {secret} or {credential}, not both", n.Line)
	case out.Secret == "" && out.Credential == "":
		return fmt.Errorf("line %d: a mapping value needs secret or credential", n.Line)
	}
	name := out.Secret + out.Credential
	if !secretName.MatchString(name) {
		return fmt.Errorf("line %d: invalid secret or credential name %q", n.Line, name)
	}
	if out.Format != "" && strings.Count(out.Format, "{}") != 1 {
		return fmt.Errorf("line %d: format must contain {} exactly once", n.Line)
	}
	out.set = true
	*v = out
	return nil
}

// Resolve returns the value given the fetched layer-1 secrets and the
// principal's layer-2 credentials; a missing one is an error naming it.
func (v Value) Resolve(secrets, credentials map[string][]byte) (string, error) {
	var s string
	switch {
	case v.Secret != "":
		b, ok := secrets[v.Secret]
		if !ok {
			return "", fmt.Errorf("secret %q not available", v.Secret)
		}
		s = string(b)
	case v.Credential != "":
		b, ok := credentials[v.Credential]
		if !ok {
			return "", fmt.Errorf("credential %q not provided", v.Credential)
		}
		s = string(b)
	default:
		return v.Literal, nil
	}
	if v.Format != "" {
		s = strings.Replace(v.Format, "{}", s, 1)
	}
	return s, nil
}

// LoadConfig reads and parses the configuration file at path and resolves
// its relative paths against the file's directory.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("config %s: larger than %d bytes", path, MaxConfigSize)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	cfg.Data = abs(cfg.Data)
	cfg.Policy = abs(cfg.Policy)
	if cfg.Facilitator != nil {
		cfg.Facilitator.TokenFile = abs(cfg.Facilitator.TokenFile)
	}
	return cfg, nil
}

// ParseConfig parses a configuration strictly: unknown keys, duplicate keys,
// several documents and invalid values are errors that name the line. It
// fills defaults and validates.
func ParseConfig(b []byte) (*Config, error) {
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty configuration")
		}
		return nil, fmt.Errorf("parsing: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("parsing: more than one YAML document")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) validate() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Data == "" {
		c.Data = DefaultData
	}
	switch t := time.Duration(c.ApprovalTimeout); {
	case t == 0:
		c.ApprovalTimeout = Duration(DefaultApprovalTimeout)
	case t < 0 || t > MaxApprovalTimeout:
		return fmt.Errorf("approval_timeout %s not in (0, %s]", t, MaxApprovalTimeout)
	}
	if c.KBS != "" {
		u, err := url.Parse(c.KBS)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("kbs: %q is not an http(s) URL", c.KBS)
		}
	}
	for _, h := range c.AllowedHosts {
		if err := validAllowedHost(h); err != nil {
			return fmt.Errorf("allowed_hosts: %w", err)
		}
	}
	if len(c.Upstreams) == 0 {
		return errors.New("upstreams: at least one upstream is required")
	}
	for _, name := range c.UpstreamNames() {
		u := c.Upstreams[name]
		if !upstreamName.MatchString(name) {
			return fmt.Errorf("upstream %q: name must match %s (no underscore)", name, upstreamName)
		}
		if u == nil {
			return fmt.Errorf("upstream %s: empty", name)
		}
		u.Name = name
		if err := u.validate(); err != nil {
			return fmt.Errorf("upstream %s: %w", name, err)
		}
	}
	if len(c.SecretNames()) > 0 && c.KBS == "" {
		return errors.New("kbs: required because an upstream refers to {secret: NAME}")
	}
	if err := c.validatePrices(); err != nil {
		return err
	}
	return c.validateStorage()
}

// ExposedPrefix is the prefix of the upstream's exposed names: Prefix, or
// "<name>_" when it is not set.
func (u *Upstream) ExposedPrefix() string {
	if u.Prefix == nil {
		return u.Name + "_"
	}
	return *u.Prefix
}

// Timeout is the deadline of one forwarded request: CallTimeout, or
// DefaultCallTimeout.
func (u *Upstream) Timeout() time.Duration {
	if u.CallTimeout == 0 {
		return DefaultCallTimeout
	}
	return time.Duration(u.CallTimeout)
}

func (u *Upstream) validate() error {
	if u.Prefix != nil && !upstreamPrefix.MatchString(*u.Prefix) {
		return fmt.Errorf("prefix %q must match %s", *u.Prefix, upstreamPrefix)
	}
	if u.ProtocolVersion != "" && !slices.Contains(ProtocolVersions, u.ProtocolVersion) {
		return fmt.Errorf("protocol_version %q is not one of %s", u.ProtocolVersion, strings.Join(ProtocolVersions, ", "))
	}
	if t := time.Duration(u.CallTimeout); t < 0 || t > MaxCallTimeout {
		return fmt.Errorf("call_timeout %s not in (0, %s]", t, MaxCallTimeout)
	}
	switch {
	case u.Command != "" && u.URL != "":
		return errors.New("set either command or url, not both")
	case u.Command == "" && u.URL == "":
		return errors.New("command or url is required")
	case u.Command != "":
		if len(u.Headers) > 0 {
			return errors.New("headers apply to url upstreams only")
		}
		for k, v := range u.Env {
			if !envName.MatchString(k) {
				return fmt.Errorf("env: invalid variable name %q", k)
			}
			if !v.set {
				return fmt.Errorf("env %s: empty value", k)
			}
		}
	default:
		if len(u.Args) > 0 || len(u.Env) > 0 {
			return errors.New("args and env apply to command upstreams only")
		}
		p, err := url.Parse(u.URL)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("url: %q is not an http(s) URL", u.URL)
		}
		for k, v := range u.Headers {
			if !headerName.MatchString(k) {
				return fmt.Errorf("headers: invalid header name %q", k)
			}
			if !v.set {
				return fmt.Errorf("header %s: empty value", k)
			}
		}
	}
	return nil
}

// UpstreamNames returns the upstream names in sorted order.
func (c *Config) UpstreamNames() []string {
	names := make([]string, 0, len(c.Upstreams))
	for n := range c.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SecretNames returns the distinct layer-1 secret names referred to.
func (c *Config) SecretNames() []string {
	set := map[string]bool{}
	for _, u := range c.Upstreams {
		if u == nil {
			continue
		}
		for _, v := range u.values() {
			if v.Secret != "" {
				set[v.Secret] = true
			}
		}
	}
	return sortedKeys(set)
}

// Credentials returns the layer-2 credential names the upstream needs; an
// upstream with any runs one connection per MCP session.
func (u *Upstream) Credentials() []string {
	set := map[string]bool{}
	for _, v := range u.values() {
		if v.Credential != "" {
			set[v.Credential] = true
		}
	}
	return sortedKeys(set)
}

func (u *Upstream) values() []Value {
	var vs []Value
	for _, v := range u.Env {
		vs = append(vs, v)
	}
	for _, v := range u.Headers {
		vs = append(vs, v)
	}
	return vs
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
