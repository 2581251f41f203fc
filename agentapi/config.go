package agentapi

import (
	"net"
	"net/url"
	"strings"
)

// Config is an agent's effective configuration: everything that decides what
// it does with what it reads, and nothing secret (no wallet, no API key).
// Its Digest is bound into the agent's evidence, so a member who verifies
// the evidence knows the model endpoint (and whether it is attested), the
// system prompt, the gateway and the limits the agent runs with.
type Config struct {
	// Name is the name the agent answers to (@Name in a group).
	Name         string  `json:"name"`
	Model        Model   `json:"model"`
	SystemPrompt string  `json:"system_prompt"`
	Gateway      Gateway `json:"gateway"`
	Limits       Limits  `json:"limits"`
	// Pay is set when the agent may pay for paid tools (x402): through
	// which signer and up to what. Nil: it never pays.
	Pay *Pay `json:"pay,omitempty"`
}

// Pay is what the agent may pay for a tool call: never its signer token.
type Pay struct {
	// Signer is the chatmcp-signer URL (RA-TLS).
	Signer string `json:"signer"`
	// PolicySHA256 is the SHA-256 of the signer attestation policy file.
	PolicySHA256 Digest `json:"policy_sha256"`
	// Network is the CAIP-2 network it pays on.
	Network string `json:"network"`
	// Assets are the mints it pays in.
	Assets []string `json:"assets"`
	// MaxPerCall is the most one tool call may cost, in atomic units; the
	// signer token's budget and the signer's policy bound it further.
	MaxPerCall uint64 `json:"max_per_call"`
}

// Model is the model endpoint.
type Model struct {
	// URL is the OpenAI-compatible base URL (…/v1).
	URL string `json:"url"`
	// Model is the model name sent in requests.
	Model string `json:"model"`
	// Attested is true when the endpoint must present RA-TLS evidence that
	// the policy of hash PolicySHA256 accepts. False means the agent's
	// plaintext goes to an endpoint nobody attested: on loopback that is the
	// agent's own TEE; elsewhere only when its operator said so
	// (model.attested: false), and members see it here.
	Attested bool `json:"attested"`
	// PolicySHA256 is the SHA-256 of the model attestation policy file;
	// zero when not Attested.
	PolicySHA256 Digest `json:"policy_sha256,omitzero"`
}

// Gateway is the MCP gateway the agent calls tools through, over RA-TLS.
type Gateway struct {
	URL string `json:"url"`
	// PolicySHA256 is the SHA-256 of the gateway attestation policy file.
	PolicySHA256 Digest `json:"policy_sha256"`
}

// Limits bound what one conversation can make the agent do.
type Limits struct {
	// MaxTokens caps each model reply (OpenAI max_tokens).
	MaxTokens int `json:"max_tokens"`
	// ToolCallsPerTurn caps the tool calls of one turn (one reply).
	ToolCallsPerTurn int `json:"tool_calls_per_turn"`
	// TurnsPerMinute caps turns per conversation per minute.
	TurnsPerMinute int `json:"turns_per_minute"`
	// ContextMessages is how many of the latest readable messages make the
	// prompt.
	ContextMessages int `json:"context_messages"`
}

// Validate checks that every field is set and within its limit.
func (c *Config) Validate() error {
	switch {
	case c.Name == "" || len(c.Name) > MaxNameLen || strings.ContainsAny(c.Name, " \t\r\n@"):
		return errorf(CheckConfig, "name %q: want 1 to %d characters without spaces or '@'", truncate(c.Name, 80), MaxNameLen)
	case len(c.SystemPrompt) > MaxSystemPrompt:
		return errorf(CheckConfig, "system prompt of %d bytes exceeds %d", len(c.SystemPrompt), MaxSystemPrompt)
	case c.Model.Model == "" || len(c.Model.Model) > MaxModelName:
		return errorf(CheckConfig, "model name: want 1 to %d characters", MaxModelName)
	case c.Model.Attested == c.Model.PolicySHA256.IsZero():
		return errorf(CheckConfig, "model: attested is %v but the policy hash is %s", c.Model.Attested, map[bool]string{true: "unset", false: "set"}[c.Model.PolicySHA256.IsZero()])
	case c.Gateway.PolicySHA256.IsZero():
		return errorf(CheckConfig, "gateway: no policy hash")
	}
	if err := checkURL("model url", c.Model.URL, false); err != nil {
		return err
	}
	if err := checkURL("gateway url", c.Gateway.URL, true); err != nil {
		return err
	}
	if p := c.Pay; p != nil {
		switch {
		case p.PolicySHA256.IsZero():
			return errorf(CheckConfig, "pay: no signer policy hash")
		case p.MaxPerCall == 0:
			return errorf(CheckConfig, "pay: max_per_call is 0")
		case len(p.Assets) == 0 || len(p.Assets) > 16:
			return errorf(CheckConfig, "pay: want 1 to 16 assets")
		case p.Network == "" || len(p.Network) > 128:
			return errorf(CheckConfig, "pay: want a network")
		}
		if err := checkURL("pay signer url", p.Signer, true); err != nil {
			return err
		}
	}
	l := c.Limits
	for _, f := range []struct {
		name   string
		v, max int
	}{
		{"max_tokens", l.MaxTokens, MaxMaxTokens},
		{"tool_calls_per_turn", l.ToolCallsPerTurn, MaxToolCallsPerTurn},
		{"turns_per_minute", l.TurnsPerMinute, MaxTurnsPerMinute},
		{"context_messages", l.ContextMessages, MaxContextMessages},
	} {
		if f.v < 1 || f.v > f.max {
			return errorf(CheckConfig, "limits.%s is %d, want 1 to %d", f.name, f.v, f.max)
		}
	}
	return nil
}

func checkURL(what, s string, httpsOnly bool) error {
	if len(s) > MaxURLLen {
		return errorf(CheckConfig, "%s: longer than %d bytes", what, MaxURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && (httpsOnly || u.Scheme != "http")) || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		want := "http(s)://host[:port][/path]"
		if httpsOnly {
			want = "https://host[:port][/path]"
		}
		return errorf(CheckConfig, "%s %q: want %s", what, truncate(s, 80), want)
	}
	return nil
}

// IsLoopback reports whether rawURL's host is a loopback address or
// "localhost": an endpoint on the agent's own machine.
func IsLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Canonical returns the configuration's canonical bytes (see canon).
func (c *Config) Canonical() []byte {
	b := newCanon(TagConfig)
	b.str(c.Name)
	b.str(c.Model.URL)
	b.str(c.Model.Model)
	b.boolean(c.Model.Attested)
	b.bytes(c.Model.PolicySHA256[:])
	b.str(c.SystemPrompt)
	b.str(c.Gateway.URL)
	b.bytes(c.Gateway.PolicySHA256[:])
	for _, v := range []int{c.Limits.MaxTokens, c.Limits.ToolCallsPerTurn, c.Limits.TurnsPerMinute, c.Limits.ContextMessages} {
		b.i64(int64(v))
	}
	// Appended only when set, so configurations without pay keep their
	// digests; it ends the bytes, so its presence is unambiguous.
	if p := c.Pay; p != nil {
		b.str("pay")
		b.str(p.Signer)
		b.bytes(p.PolicySHA256[:])
		b.str(p.Network)
		b.list(len(p.Assets))
		for _, a := range p.Assets {
			b.str(a)
		}
		b.u64(p.MaxPerCall)
	}
	return b.done()
}

// Digest is the SHA-256 of Canonical: the configuration digest bound into
// the agent's evidence and named by every receipt.
func (c *Config) Digest() Digest { return Sum(c.Canonical()) }
