package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/wallet"
)

// EnvModelAPIKey is the API key `chatmcp dev --model` gives the assistant's
// model endpoint (through the key broker, never on the command line).
const EnvModelAPIKey = "CHATMCP_MODEL_API_KEY"

// devAgentSecrets returns the key-broker secrets the development assistant
// needs: a new wallet and, when set, the model's API key. None without
// --model.
func devAgentSecrets(model string) (map[string][]byte, error) {
	if model == "" {
		return nil, nil
	}
	w, err := wallet.Generate(rand.Reader)
	if err != nil {
		return nil, err
	}
	s := map[string][]byte{devstack.AgentSecret: w.MarshalKeypair()}
	if k := os.Getenv(EnvModelAPIKey); k != "" {
		s[devstack.AgentKeySecret] = []byte(k)
	}
	return s, nil
}

// startDevAgent starts the assistant when --model is given and prints how
// to invite it; without --model it prints how to add one.
func startDevAgent(ctx context.Context, env *Env, st *devstack.Stack, model, modelName string, secrets map[string][]byte) (stop func(), err error) {
	w := env.Stdout
	if model == "" {
		fmt.Fprint(w, `
No assistant: add one with --model URL, any OpenAI-compatible chat-completions
endpoint (llama.cpp's server, Ollama, vLLM, a confidential-inference service), e.g.
  chatmcp dev --model http://127.0.0.1:11434/v1 --model-name llama3.2
(an API key, if the endpoint needs one, from $CHATMCP_MODEL_API_KEY). See docs/agent.md.
`)
		return func() {}, nil
	}
	_, hasKey := secrets[devstack.AgentKeySecret]
	a, err := st.StartAgent(ctx, &devstack.AgentOptions{ModelURL: model, Model: modelName, APIKey: hasKey, Log: env.Stderr})
	if err != nil {
		return nil, err
	}
	attested := "not attested: on loopback"
	if !agentapi.IsLoopback(model) {
		attested = "NOT attested (model.attested: false): conversations the assistant reads go to this endpoint unverified, and its evidence says so"
	}
	fmt.Fprintf(w, `
Assistant %q (chatmcp-agent, SIMULATED TEE) at %s
  model       %s (%s), %s
  config      %s
Invite it into a group (alice's token from above, narrowed to the notes tools):
  chatmcp chat agent add --conversation ID --agent %s --policy %s --tools 'notes_*' --token TOKEN
  chatmcp chat send --conversation ID "@%s please list my notes"
  chatmcp chat approvals; chatmcp chat approve --gateway %s --policy %s APPROVAL_ID
  chatmcp chat agent remove --conversation ID --agent %s
(with CHATMCP_AGENT_POLICY=%s your client gives the assistant message keys;
 CHATMCP_POLICY, the gateway's policy for approve and remove, is the same file here)
`, a.Config.Name, a.Address, model, modelName, attested, a.ConfigFile, a.Address, st.PolicyFile, a.Config.Name, st.GatewayURL, st.PolicyFile, a.Address, st.PolicyFile)
	return a.Stop, nil
}
