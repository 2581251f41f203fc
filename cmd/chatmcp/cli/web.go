package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/web"
)

// newWebCmd is `chatmcp web`: the local web app.
func newWebCmd(env *Env) *cobra.Command {
	var (
		listen, walletFile, audit, token string
		cf                               chatFlags
		gf                               gatewayFlags
	)
	c := &cobra.Command{
		Use:   "web [--listen 127.0.0.1:8450] [--relay URL] [--home DIR]",
		Short: "Serve the ChatMCP web app on loopback (chat, attestation viewer, gateway admin)",
		Long: `web serves the ChatMCP web app to a browser on this machine. This process
holds the device keys and relay sessions (the same --home as 'chatmcp chat',
so both see the same state); the browser holds neither.

It prints exactly one line on stdout once it serves:
  chatmcp web: open http://127.0.0.1:8450/launch?secret=…
The link works once: it gives the browser that opens it an HttpOnly,
SameSite=Strict session cookie. Every state-changing request carries a CSRF
token, every response a strict Content-Security-Policy, and only the
loopback Host names are answered. A non-loopback --listen is refused.

Sign in on the page with a keypair file, or with a browser wallet (Phantom
or any Wallet Standard wallet). With --wallet the page starts signed in.
An assistant is invited from a conversation's page when its evidence passes
--agent-policy, with a grant derived from --token; its approval requests
show in the conversation with Approve / Deny buttons (statements signed by
this device, delivered to the gateway verified under --policy).
With --gateway (and --data, or --token-file and --policy) the admin pages
approve held tool calls, review changed tools, mint, attenuate and revoke
tokens, and (with --audit) verify and browse the audit log. --policy is also
the attestation viewer's default policy.`,
		Example: `  chatmcp web --relay http://127.0.0.1:8451
  chatmcp web --relay http://127.0.0.1:8451 --gateway https://127.0.0.1:8443 --data ./gateway-data --audit ./gateway-data/audit.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := web.CheckLoopback(listen); err != nil {
				return &ExitError{Code: ExitUsage, Err: err, Hint: "use --listen 127.0.0.1:PORT"}
			}
			relayURL := firstNonEmpty(cf.relay, env.getenv("CHATMCP_RELAY"))
			if relayURL == "" {
				return &ExitError{Code: ExitUsage, Err: errors.New("--relay URL is required"), Hint: "or set CHATMCP_RELAY"}
			}
			home, err := cf.homeDir(env)
			if err != nil {
				return err
			}
			opts := &web.Options{Relay: relayURL, Home: home, Now: env.Now, AuditFile: audit,
				Log: slog.New(slog.NewTextHandler(env.Stderr, nil))}
			if walletFile = firstNonEmpty(walletFile, env.getenv("CHATMCP_WALLET")); walletFile != "" {
				if opts.Wallet, err = wallet.LoadFile(walletFile); err != nil {
					return exitf(ExitUsage, "%w", err)
				}
			}
			if opts.AgentPolicy, err = cf.loadAgentPolicy(env, ""); err != nil {
				return err
			}
			opts.Token = strings.TrimSpace(firstNonEmpty(token, env.getenv("CHATMCP_TOKEN")))
			if gf.policy != "" {
				if opts.PolicyFile, err = filepath.Abs(gf.policy); err != nil {
					return exitf(ExitUsage, "%w", err)
				}
			}
			if gf.gateway != "" {
				var a *gwclient.Admin
				if a, err = gf.admin(cmd, env); err != nil {
					return err
				}
				opts.Admin = a
			}
			srv, err := web.New(opts)
			if err != nil {
				return exitf(ExitUsage, "%w", err)
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return exitf(ExitUsage, "listening on %s: %w", listen, err)
			}
			fmt.Fprintf(env.Stdout, "chatmcp web: open %s\n", srv.LaunchURL(ln))
			return srv.Serve(cmd.Context(), ln)
		},
	}
	f := c.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8450", "address to serve (loopback only)")
	f.StringVar(&cf.relay, "relay", "", "relay URL (default $CHATMCP_RELAY)")
	f.StringVar(&cf.home, "home", "", "client state directory, as for 'chatmcp chat' (default $CHATMCP_HOME or ~/.chatmcp)")
	f.StringVar(&walletFile, "wallet", "", "start signed in with this keypair file (default $CHATMCP_WALLET; else sign in on the page)")
	f.StringVar(&audit, "audit", "", "gateway audit log to verify and browse on the admin page")
	f.StringVar(&cf.agentPolicy, "agent-policy", "", "attestation policy an assistant's evidence must satisfy to be invited and get message keys (default $CHATMCP_AGENT_POLICY; none: no assistant)")
	f.StringVar(&token, "token", "", "your gateway token, from which grants to assistants are derived (default $CHATMCP_TOKEN; else the page asks)")
	gf.register(c)
	return c
}
