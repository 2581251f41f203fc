package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/gwclient"
)

func newDevCmd(env *Env) *cobra.Command {
	var (
		dir       string
		listen    string
		model     string
		modelName string
	)
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole stack in one process on loopback (INSECURE simulated TEE)",
		Long: `dev starts, in this one process and on loopback only: a key broker (--dev,
SQLite), an example MCP server (notes: list_notes, read_note, write_note) and a
gateway in front of it that fetches the example's API key from the key broker,
and a messaging relay (SQLite) for end-to-end encrypted chat.
Everything runs on the SIMULATED TEE, whose evidence anyone can forge: use it to
try ChatMCP, never for real data. It prints a capability token and the lines to
connect a client. Ctrl-C stops everything.

Data lives in a fresh temporary directory removed on exit, unless --dir is given.
The gateway listens on 127.0.0.1:8443, the address the README's lines use; when
that port is taken dev exits with an error instead of moving elsewhere: choose
another with --listen (127.0.0.1:0 for any free port) and use the printed URLs.`,
		Example: `  go run ./cmd/chatmcp dev
  chatmcp dev --model http://127.0.0.1:8080/v1 --model-name llama3   # also an assistant
  chatmcp dev --listen 127.0.0.1:8444 --dir ~/.chatmcp/dev`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if dir == "" {
				tmp, err := os.MkdirTemp("", "chatmcp-dev-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			fmt.Fprintf(env.Stderr, "chatmcp dev: starting the key broker, the notes MCP server, the gateway on %s and the relay (data in %s)\n", listen, dir)
			secrets, err := devAgentSecrets(model)
			if err != nil {
				return exitf(ExitUsage, "%w", err)
			}
			st, err := devstack.Start(ctx, &devstack.Options{Dir: dir, Listen: listen, Log: env.Stderr, Metrics: true, Secrets: secrets})
			if errors.Is(err, syscall.EADDRINUSE) {
				// No silent move to another port: the README's lines name
				// 8443, and a second stack would answer for the first.
				return &ExitError{Code: ExitUsage, Err: fmt.Errorf("gateway address %s is in use (is another chatmcp dev running?)", listen),
					Hint: "choose another port with --listen, e.g. --listen 127.0.0.1:8444 (127.0.0.1:0 picks a free one), and use the URL this banner prints"}
			}
			if err != nil {
				return exitf(ExitUsage, "%w", err)
			}
			defer st.Close()
			mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			m, err := st.Admin.Mint(mctx, gwclient.MintRequest{Tools: []string{"*"}, TTL: "12h", Subject: "dev"})
			cancel()
			if err != nil {
				return exitf(ExitUsage, "minting a token: %w", err)
			}
			var webURLs [2]string
			for i, name := range []string{"alice", "bob"} {
				if webURLs[i], err = startDevWeb(ctx, st, dir, name); err != nil {
					return exitf(ExitUsage, "starting chatmcp web for %s: %w", name, err)
				}
			}
			stopAgent, err := startDevAgent(ctx, env, st, model, modelName, secrets)
			if err != nil {
				return exitf(ExitUsage, "starting the assistant: %w", err)
			}
			defer stopAgent()
			printDevBanner(env, st, m, dir, webURLs)
			<-ctx.Done()
			fmt.Fprintln(env.Stderr, "chatmcp dev: stopping")
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "data directory to keep (default: a temporary one, removed on exit)")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8443", "gateway address (loopback only; 127.0.0.1:0 for any free port)")
	c.Flags().StringVar(&model, "model", "", "also start an assistant (chatmcp-agent) using this OpenAI-compatible `URL` (…/v1; API key from $CHATMCP_MODEL_API_KEY)")
	c.Flags().StringVar(&modelName, "model-name", "default", "model name the assistant asks --model for")
	return c
}

func printDevBanner(env *Env, st *devstack.Stack, m *gwclient.Minted, dir string, webURLs [2]string) {
	w := env.Stdout
	gwData, _ := filepath.Abs(st.GatewayData)
	policy, _ := filepath.Abs(st.PolicyFile)
	fmt.Fprintf(w, `
ChatMCP development stack — INSECURE: simulated TEE, loopback only
  key broker  %s
  gateway     %s   (upstream "notes", tools notes_list_notes, notes_read_note, notes_write_note)
  data        %s
  relay       %s   (messaging, SQLite)
  metrics     %s (key broker)  %s (gateway)  %s (relay)
              each serves /healthz, /readyz and Prometheus /metrics

Capability token (all tools, 12h, id %s):
  %s

Connect a desktop MCP client (stdio command):
  chatmcp connect %s --policy %s --token %s
  (from a checkout: go run ./cmd/chatmcp connect ...)

Try it with the MCP inspector:
  npx @modelcontextprotocol/inspector --cli chatmcp connect %s --policy %s --token %s --method tools/list

notes_write_note is destructive, so each call waits for you:
  chatmcp approvals list --gateway %s --data %s
  chatmcp approvals approve --gateway %s --data %s ID

Two people in the browser (chatmcp web, signed in already; each link works once):
  alice  %s
  bob    %s
  (wallets %s and %s; the Admin page approves the gateway's held calls)

Two people, one end-to-end encrypted conversation:
  export CHATMCP_RELAY=%s CHATMCP_HOME=%s
  chatmcp wallet new -o alice.json && chatmcp wallet new -o bob.json
  chatmcp chat login --wallet bob.json
  chatmcp chat send --wallet alice.json --to "$(chatmcp wallet address bob.json)" "hello bob"
  chatmcp chat requests --wallet bob.json
  chatmcp chat allow --wallet bob.json "$(chatmcp wallet address alice.json)"
  chatmcp chat read --wallet bob.json

Ctrl-C stops everything.
`, st.KBSURL, st.GatewayURL, dir, st.RelayURL, st.KBSOpsURL, st.GatewayOpsURL, st.RelayOpsURL, m.ID, m.Token,
		st.GatewayURL, policy, m.Token,
		st.GatewayURL, policy, m.Token,
		st.GatewayURL, gwData, st.GatewayURL, gwData,
		webURLs[0], webURLs[1], filepath.Join(dir, "alice.json"), filepath.Join(dir, "bob.json"),
		st.RelayURL, filepath.Join(dir, "homes"))
}
