// Package agenttest starts a real chatmcp-agent in-process for tests (its
// daemon.Run, --dev: the INSECURE simulated TEE): it writes the
// configuration file, runs the agent against the caller's KBS, relay,
// gateway and model endpoint, and waits until it has signed in and
// published its evidence. Not for production.
package agenttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/chatmcp/chatmcp/agent/daemon"
	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/wallet"
)

// Options say what the agent connects to. The KBS must already hold the
// wallet secret (NewWallet) under a policy releasing it to this process's
// simulated measurement (devstack.Options.Secrets does).
type Options struct {
	// Dir holds the configuration file and the agent's data directory
	// (Dir/agent-data). If empty, t.TempDir().
	Dir string
	// Name is the agent's name. If empty, "assistant".
	Name string
	// Relay and KBS are base URLs. Required.
	Relay, KBS string
	// WalletSecret names the KBS secret holding the agent's wallet.
	// Required.
	WalletSecret string
	// APIKeySecret, if set, names the KBS secret of the model's API key.
	APIKeySecret string
	// ModelURL is the OpenAI-compatible base URL. Required.
	ModelURL string
	// Model is the model name. If empty, "tiny-chat".
	Model string
	// ModelAttested is written as model.attested when non-nil.
	ModelAttested *bool
	// ModelPolicy, if set, is the attestation policy file the model
	// endpoint's RA-TLS evidence must satisfy (model.policy).
	ModelPolicy string
	// GatewayURL and GatewayPolicy (a file) name the gateway. Required.
	GatewayURL, GatewayPolicy string
	// SystemPrompt; if empty, the agent's default.
	SystemPrompt string
	// Limits; zero fields take the agent's defaults.
	Limits agentapi.Limits
	// Pay, if set, is written as the pay block (docs/agent.md).
	Pay *Pay
	// TurnTimeout, ApprovalWait and RefreshEvery are passed to the daemon.
	TurnTimeout, ApprovalWait, RefreshEvery time.Duration
}

// Pay is the agent's pay block: the signer and its policy file, the KBS
// secret holding the signer token, the RPC URL, the network and limits.
type Pay struct {
	Signer, Policy, TokenSecret, RPC, Network string
	MaxPerCall                                uint64
	Assets                                    []string
}

// Agent is a running agent.
type Agent struct {
	Address wallet.Address
	Config  agentapi.Config
	// ConfigFile and Data are the configuration file and data directory.
	ConfigFile, Data string
	// Log holds everything the agent wrote to its stderr and logs.
	Log *Buffer

	stop func()
}

// Stop ends the agent and waits for it. It is also run at t's cleanup.
func (a *Agent) Stop() { a.stop() }

// Buffer is a bytes.Buffer safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// Bytes returns a copy of what was written.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// NewWallet returns a new wallet and its solana-keygen JSON, the value of
// the KBS wallet secret.
func NewWallet(t testing.TB) (*wallet.Keypair, []byte) {
	t.Helper()
	w, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return w, w.MarshalKeypair()
}

// WriteConfig writes the configuration file o describes and returns its
// path and the data directory.
func WriteConfig(t testing.TB, o *Options) (file, data string) {
	t.Helper()
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	name := o.Name
	if name == "" {
		name = "assistant"
	}
	model := o.Model
	if model == "" {
		model = "tiny-chat"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data = filepath.Join(dir, "agent-data")
	m := map[string]any{"url": o.ModelURL, "model": model}
	if o.APIKeySecret != "" {
		m["api_key"] = map[string]string{"secret": o.APIKeySecret}
	}
	if o.ModelPolicy != "" {
		m["policy"] = o.ModelPolicy
	}
	if o.ModelAttested != nil {
		m["attested"] = *o.ModelAttested
	}
	cfg := map[string]any{
		"name": name, "data": data, "relay": o.Relay, "kbs": o.KBS,
		"wallet":  map[string]string{"secret": o.WalletSecret},
		"model":   m,
		"gateway": map[string]string{"url": o.GatewayURL, "policy": o.GatewayPolicy},
		"limits": map[string]int{"max_tokens": o.Limits.MaxTokens, "tool_calls_per_turn": o.Limits.ToolCallsPerTurn,
			"turns_per_minute": o.Limits.TurnsPerMinute, "context_messages": o.Limits.ContextMessages},
	}
	if o.SystemPrompt != "" {
		cfg["system_prompt"] = o.SystemPrompt
	}
	if p := o.Pay; p != nil {
		cfg["pay"] = map[string]any{"signer": p.Signer, "policy": p.Policy, "token": map[string]string{"secret": p.TokenSecret},
			"rpc": p.RPC, "network": p.Network, "max_per_call": p.MaxPerCall, "assets": p.Assets}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file, data
}

// Start writes the configuration and runs the agent until t ends; it
// returns once the agent has signed in to the relay with its evidence, and
// fails t if it stops before.
func Start(t testing.TB, o *Options) *Agent {
	t.Helper()
	file, data := WriteConfig(t, o)
	log := &Buffer{}
	logger, _ := ops.NewLogger(log, "text", nil)
	type ready struct {
		addr wallet.Address
		cfg  agentapi.Config
	}
	readyc := make(chan ready, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, &daemon.Options{Config: file, Dev: true, Stderr: log, Logger: logger,
			TurnTimeout: o.TurnTimeout, ApprovalWait: o.ApprovalWait, RefreshEvery: o.RefreshEvery,
			Ready: func(a wallet.Address, c agentapi.Config) { readyc <- ready{a, c} }})
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		})
	}
	select {
	case r := <-readyc:
		a := &Agent{Address: r.addr, Config: r.cfg, ConfigFile: file, Data: data, Log: log, stop: stop}
		t.Cleanup(stop)
		return a
	case err := <-done:
		cancel()
		t.Fatalf("agent stopped before it was ready: %v\n%s", err, log.Bytes())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("agent not ready within 60 s:\n%s", fmt.Sprint(string(log.Bytes())))
	}
	return nil
}
