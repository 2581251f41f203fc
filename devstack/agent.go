package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/chatmcp/chatmcp/agent/daemon"
	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/wallet"
)

// AgentSecret and AgentKeySecret are the KBS secrets of the development
// agent's wallet and of its model endpoint's API key: pass them in
// Options.Secrets before Start.
const (
	AgentSecret    = "agent-wallet"
	AgentKeySecret = "model-key"
)

// AgentOptions configure StartAgent.
type AgentOptions struct {
	// ModelURL is an OpenAI-compatible base URL (…/v1). Required. An
	// endpoint off loopback is configured `attested: false` (the agent's
	// evidence then says so).
	ModelURL string
	// Model is the model name. If empty, "default".
	Model string
	// Name is the agent's name. If empty, "assistant".
	Name string
	// APIKey says the KBS holds AgentKeySecret for the model.
	APIKey bool
	// Limits; zero fields take the agent's defaults.
	Limits agentapi.Limits
	// Log receives the agent's banner and logs. If nil, io.Discard.
	Log io.Writer
}

// Agent is a development agent running in this process.
type Agent struct {
	Address    wallet.Address
	Config     agentapi.Config
	ConfigFile string
	stop       func()
}

// Stop ends the agent and waits for it.
func (a *Agent) Stop() { a.stop() }

// StartAgent runs chatmcp-agent (--dev, the INSECURE simulated TEE) against
// the stack, its wallet from the KBS secret AgentSecret, and returns once it
// has signed in to the relay with its evidence.
func (st *Stack) StartAgent(ctx context.Context, o *AgentOptions) (*Agent, error) {
	if o == nil || o.ModelURL == "" {
		return nil, errors.New("devstack: agent: ModelURL is required")
	}
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	dir := filepath.Join(filepath.Dir(st.PolicyFile), "agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	name, model := o.Name, o.Model
	if name == "" {
		name = "assistant"
	}
	if model == "" {
		model = "default"
	}
	m := map[string]any{"url": o.ModelURL, "model": model}
	if !agentapi.IsLoopback(o.ModelURL) {
		m["attested"] = false
	}
	if o.APIKey {
		m["api_key"] = map[string]string{"secret": AgentKeySecret}
	}
	cfg := map[string]any{"name": name, "data": filepath.Join(dir, "data"), "relay": st.RelayURL, "kbs": st.KBSURL,
		"wallet": map[string]string{"secret": AgentSecret}, "model": m,
		"gateway": map[string]string{"url": st.GatewayURL, "policy": st.PolicyFile},
		"limits": map[string]int{"max_tokens": o.Limits.MaxTokens, "tool_calls_per_turn": o.Limits.ToolCallsPerTurn,
			"turns_per_minute": o.Limits.TurnsPerMinute, "context_messages": o.Limits.ContextMessages}}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	type ready struct {
		addr wallet.Address
		cfg  agentapi.Config
	}
	readyc := make(chan ready, 1)
	done := make(chan error, 1)
	actx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- daemon.Run(actx, &daemon.Options{Config: file, Dev: true, Stderr: logw,
			Logger: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Ready:  func(a wallet.Address, c agentapi.Config) { readyc <- ready{a, c} }})
	}()
	select {
	case r := <-readyc:
		return &Agent{Address: r.addr, Config: r.cfg, ConfigFile: file, stop: func() { cancel(); <-done }}, nil
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("devstack: agent: %w", err)
	case <-ctx.Done():
		cancel()
		<-done
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		return nil, errors.New("devstack: agent: not ready within 60 s")
	}
}
