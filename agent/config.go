package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/gagliardetto/solana-go"
)

// MaxConfigFile caps the configuration file.
const MaxConfigFile = 64 << 10

// Defaults of the limits a configuration leaves out.
var DefaultLimits = agentapi.Limits{MaxTokens: 512, ToolCallsPerTurn: 4, TurnsPerMinute: 30, ContextMessages: 20}

// DefaultSystemPrompt is the system prompt when the configuration has none.
const DefaultSystemPrompt = "You are a careful assistant in an end-to-end encrypted conversation. Use the tools you are offered only for what the person asked; any write waits for your inviter's approval."

// SecretRef names a KBS secret.
type SecretRef struct {
	Secret string `yaml:"secret"`
}

// File is the agent's configuration file (docs/agent.md). Paths are
// relative to the file's directory.
type File struct {
	Name   string    `yaml:"name"`
	Data   string    `yaml:"data"`
	Relay  string    `yaml:"relay"`
	KBS    string    `yaml:"kbs"`
	Wallet SecretRef `yaml:"wallet"`
	Model  struct {
		URL    string     `yaml:"url"`
		Model  string     `yaml:"model"`
		APIKey *SecretRef `yaml:"api_key"`
		Policy string     `yaml:"policy"`
		// Attested false accepts an unattested endpoint off loopback;
		// true requires Policy. If unset: attested when Policy is set.
		Attested *bool `yaml:"attested"`
	} `yaml:"model"`
	Gateway struct {
		URL    string `yaml:"url"`
		Policy string `yaml:"policy"`
	} `yaml:"gateway"`
	// Pay, if set, lets the agent pay for paid tools (x402) through
	// chatmcp-signer.
	Pay          *PayFile `yaml:"pay"`
	SystemPrompt string   `yaml:"system_prompt"`
	Limits       struct {
		MaxTokens        int `yaml:"max_tokens"`
		ToolCallsPerTurn int `yaml:"tool_calls_per_turn"`
		TurnsPerMinute   int `yaml:"turns_per_minute"`
		ContextMessages  int `yaml:"context_messages"`
	} `yaml:"limits"`
}

// PayFile is the pay block: the signer (RA-TLS under Policy) that holds
// the paying key, the capability token it was minted (a KBS secret, like
// the wallet), the Solana RPC endpoint for decimals and blockhashes, and
// the agent's own limits on top of the token's budget.
type PayFile struct {
	Signer string    `yaml:"signer"`
	Policy string    `yaml:"policy"`
	Token  SecretRef `yaml:"token"`
	RPC    string    `yaml:"rpc"`
	// Network is the CAIP-2 network; if empty, Solana mainnet.
	Network    string   `yaml:"network"`
	MaxPerCall uint64   `yaml:"max_per_call"`
	Assets     []string `yaml:"assets"`
}

// Loaded is a validated configuration: the file, its effective
// configuration and the attestation policies it names.
type Loaded struct {
	File
	// Effective is what the agent's evidence binds.
	Effective agentapi.Config
	// ModelPolicy is nil for an unattested model endpoint.
	ModelPolicy   *attest.Policy
	GatewayPolicy *attest.Policy
	// SignerPolicy is the pay block's signer policy; nil without pay.
	SignerPolicy *attest.Policy
}

// LoadConfig reads, parses and validates the configuration file at path.
func LoadConfig(path string) (*Loaded, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	l, err := ParseConfig(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// ParseConfig parses a configuration strictly (unknown and duplicate keys
// are errors), resolves paths against dir, reads the policies and checks
// the rule for the model endpoint: attested (a policy) or on loopback, or
// explicitly `attested: false`.
func ParseConfig(b []byte, dir string) (*Loaded, error) {
	if len(b) > MaxConfigFile {
		return nil, fmt.Errorf("config of %d bytes exceeds %d", len(b), MaxConfigFile)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var l Loaded
	if err := dec.Decode(&l.File); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f := &l.File
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	f.Data, f.Model.Policy, f.Gateway.Policy = abs(f.Data), abs(f.Model.Policy), abs(f.Gateway.Policy)
	switch {
	case f.Data == "":
		return nil, fmt.Errorf("config: data: a directory is required")
	case f.Relay == "":
		return nil, fmt.Errorf("config: relay: a URL is required")
	case f.KBS == "":
		return nil, fmt.Errorf("config: kbs: a URL is required")
	case f.Wallet.Secret == "":
		return nil, fmt.Errorf("config: wallet: {secret: NAME} is required")
	case f.Model.APIKey != nil && f.Model.APIKey.Secret == "":
		return nil, fmt.Errorf("config: model.api_key: {secret: NAME} names no secret")
	case f.Gateway.Policy == "":
		return nil, fmt.Errorf("config: gateway.policy: an attestation policy file is required")
	}
	e := &l.Effective
	e.Name = f.Name
	e.Model.URL, e.Model.Model = f.Model.URL, f.Model.Model
	e.SystemPrompt = f.SystemPrompt
	if e.SystemPrompt == "" {
		e.SystemPrompt = DefaultSystemPrompt
	}
	e.Gateway.URL = f.Gateway.URL
	e.Limits = agentapi.Limits{MaxTokens: f.Limits.MaxTokens, ToolCallsPerTurn: f.Limits.ToolCallsPerTurn,
		TurnsPerMinute: f.Limits.TurnsPerMinute, ContextMessages: f.Limits.ContextMessages}
	for _, p := range []struct {
		v *int
		d int
	}{{&e.Limits.MaxTokens, DefaultLimits.MaxTokens}, {&e.Limits.ToolCallsPerTurn, DefaultLimits.ToolCallsPerTurn},
		{&e.Limits.TurnsPerMinute, DefaultLimits.TurnsPerMinute}, {&e.Limits.ContextMessages, DefaultLimits.ContextMessages}} {
		if *p.v == 0 {
			*p.v = p.d
		}
	}
	var err error
	var digest agentapi.Digest
	if l.GatewayPolicy, digest, err = loadPolicy(f.Gateway.Policy); err != nil {
		return nil, fmt.Errorf("config: gateway.policy: %w", err)
	}
	e.Gateway.PolicySHA256 = digest
	switch {
	case f.Model.Policy != "":
		if f.Model.Attested != nil && !*f.Model.Attested {
			return nil, fmt.Errorf("config: model: attested is false but a policy is given: remove one")
		}
		if l.ModelPolicy, digest, err = loadPolicy(f.Model.Policy); err != nil {
			return nil, fmt.Errorf("config: model.policy: %w", err)
		}
		e.Model.Attested, e.Model.PolicySHA256 = true, digest
	case f.Model.Attested != nil && *f.Model.Attested:
		return nil, fmt.Errorf("config: model: attested is true but no policy is given (model.policy)")
	case f.Model.Attested == nil && !agentapi.IsLoopback(f.Model.URL):
		return nil, fmt.Errorf("config: model: %s is off loopback and unattested: the agent would send conversations to an endpoint nobody verified; give model.policy (RA-TLS), or say model.attested: false to accept that (members see it in the agent's attested configuration)", truncate(f.Model.URL, 100))
	}
	if p := f.Pay; p != nil {
		p.Policy = abs(p.Policy)
		if p.Network == "" {
			p.Network = x402.SolanaMainnet
		}
		switch {
		case p.Signer == "":
			return nil, fmt.Errorf("config: pay.signer: a URL is required")
		case p.Policy == "":
			return nil, fmt.Errorf("config: pay.policy: the signer's attestation policy file is required")
		case p.Token.Secret == "":
			return nil, fmt.Errorf("config: pay.token: {secret: NAME} (the signer capability token) is required")
		case p.RPC == "":
			return nil, fmt.Errorf("config: pay.rpc: a Solana RPC URL is required")
		case p.MaxPerCall == 0:
			return nil, fmt.Errorf("config: pay.max_per_call: a positive amount in atomic units is required")
		case len(p.Assets) == 0:
			return nil, fmt.Errorf("config: pay.assets: at least one mint is required")
		}
		if n, err := x402.ParseNetwork(p.Network); err != nil || !n.IsSolana() {
			return nil, fmt.Errorf("config: pay.network: %q is not a Solana CAIP-2 network", truncate(p.Network, 100))
		}
		for _, a := range p.Assets {
			if _, err := solana.PublicKeyFromBase58(a); err != nil {
				return nil, fmt.Errorf("config: pay.assets: %q is not a mint address", truncate(a, 100))
			}
		}
		if l.SignerPolicy, digest, err = loadPolicy(p.Policy); err != nil {
			return nil, fmt.Errorf("config: pay.policy: %w", err)
		}
		e.Pay = &agentapi.Pay{Signer: p.Signer, PolicySHA256: digest, Network: p.Network, Assets: p.Assets, MaxPerCall: p.MaxPerCall}
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &l, nil
}

func loadPolicy(path string) (*attest.Policy, agentapi.Digest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, agentapi.Digest{}, err
	}
	p, err := attest.ParsePolicy(b)
	if err != nil {
		return nil, agentapi.Digest{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, agentapi.Sum(b), nil
}
