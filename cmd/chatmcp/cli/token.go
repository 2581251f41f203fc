package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/gwclient"
)

func newTokenCmd(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Mint, attenuate and revoke gateway capability tokens",
		Long: `Capability tokens say which gateway tools a client may call, until when.
They are default deny, audience-bound to one gateway, and can be narrowed
offline by whoever holds them (docs/gateway-tokens.md).`,
	}
	c.AddCommand(newTokenMintCmd(env), newTokenAttenuateCmd(env), newTokenRevokeCmd(env))
	return c
}

// tokenJSON is what --json prints for a minted or attenuated token: the
// admin API's answer to a mint.
type tokenJSON = gatewayapi.MintResponse

func printToken(env *Env, asJSON bool, t tokenJSON) error {
	if asJSON {
		return printJSONLine(env.Stdout, t)
	}
	fmt.Fprintln(env.Stdout, t.Token)
	return nil
}

func newTokenMintCmd(env *Env) *cobra.Command {
	var (
		gf      gatewayFlags
		tools   []string
		ttl     time.Duration
		subject string
		asJSON  bool
	)
	c := &cobra.Command{
		Use:   "mint --gateway URL --tools PATTERN[,PATTERN...] [--ttl DURATION] [--subject NAME]",
		Short: "Ask a gateway for a new token (admin)",
		Example: `  chatmcp token mint --gateway https://127.0.0.1:8443 --tools 'fs_read_*,everything_echo' --ttl 1h --subject alice
  chatmcp token mint --gateway https://gw.example:8443 --policy policy.yaml --token-file admin.token --tools '*' --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if len(tools) == 0 {
				return &ExitError{Code: ExitUsage, Err: fmt.Errorf("--tools is required"), Hint: "name tool patterns, e.g. --tools 'fs_read_*'"}
			}
			a, err := gf.admin(c, env)
			if err != nil {
				return err
			}
			req := gwclient.MintRequest{Tools: tools, Subject: subject}
			if ttl != 0 {
				req.TTL = ttl.String()
			}
			m, err := a.Mint(c.Context(), req)
			if err != nil {
				return gatewayError(err)
			}
			return printToken(env, asJSON, *m)
		},
	}
	gf.register(c)
	c.Flags().StringSliceVar(&tools, "tools", nil, "tool name patterns (shell globs over exposed names), comma-separated or repeated")
	c.Flags().DurationVar(&ttl, "ttl", 0, "lifetime (gateway default 1h, at most 720h)")
	c.Flags().StringVar(&subject, "subject", "", "principal name recorded in the token and the audit log")
	c.Flags().BoolVar(&asJSON, "json", false, `print {"id","token","expires"}`)
	return c
}

func newTokenAttenuateCmd(env *Env) *cobra.Command {
	var (
		tools  []string
		ttl    time.Duration
		budget string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "attenuate TOKEN --tools PATTERN[,PATTERN...] [--ttl DURATION] [--budget AMOUNT/PERIOD]",
		Short: "Derive a narrower token offline",
		Long: `Attenuate appends a caveat to a token without contacting the gateway. The new
token allows a tool only if the parent also does, and expires no later than
the parent: attenuation can never widen a token. Revoking the parent revokes
it too.`,
		Example: `  chatmcp token attenuate "$TOKEN" --tools 'fs_read_*' --ttl 10m
  chatmcp token attenuate "$SIGNER_TOKEN" --budget 5000000/24h   # a payment signer's token: at most 5 USDC a day`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(tools) == 0 && ttl == 0 && budget == "" {
				return &ExitError{Code: ExitUsage, Err: fmt.Errorf("nothing to narrow"), Hint: "give --tools, --ttl and/or --budget"}
			}
			if ttl < 0 {
				return exitf(ExitUsage, "--ttl must be positive")
			}
			var cv captoken.Caveat
			if len(tools) > 0 {
				cv.Tools = tools
			}
			if ttl > 0 {
				cv.Expires = env.now().Add(ttl)
			}
			if budget != "" {
				b, err := captoken.ParseBudget(budget)
				if err != nil {
					return exitf(ExitUsage, "--budget: %w", err)
				}
				cv.Budget = b
			}
			out, err := captoken.Attenuate(args[0], cv)
			if err != nil {
				return &ExitError{Code: ExitInvalid, Err: err}
			}
			p, err := captoken.Parse(out)
			if err != nil {
				return &ExitError{Code: ExitInvalid, Err: err}
			}
			return printToken(env, asJSON, tokenJSON{ID: p.ID, Token: out, Expires: p.Expires})
		},
	}
	c.Flags().StringSliceVar(&tools, "tools", nil, "tool name patterns the new token is limited to")
	c.Flags().DurationVar(&ttl, "ttl", 0, "lifetime from now (no effect beyond the parent's expiry)")
	c.Flags().StringVar(&budget, "budget", "", "budget caveat AMOUNT/PERIOD for a payment signer (chatmcp-signer), e.g. 5000000/24h; the parent's budgets still apply")
	c.Flags().BoolVar(&asJSON, "json", false, `print {"id","token","expires"} (expires: the effective expiry)`)
	return c
}

func newTokenRevokeCmd(env *Env) *cobra.Command {
	var gf gatewayFlags
	c := &cobra.Command{
		Use:     "revoke --gateway URL ID",
		Short:   "Revoke a token id and every token derived from it (admin)",
		Example: `  chatmcp token revoke --gateway https://127.0.0.1:8443 0f1e2d3c4b5a69788796a5b4c3d2e1f0`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, err := gf.admin(c, env)
			if err != nil {
				return err
			}
			if err := a.Revoke(c.Context(), args[0]); err != nil {
				return gatewayError(err)
			}
			fmt.Fprintf(env.Stderr, "revoked %s\n", args[0])
			return nil
		},
	}
	gf.register(c)
	return c
}
