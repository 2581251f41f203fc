package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newApprovalsCmd(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "approvals",
		Short: "List, approve and deny tool calls waiting for a person (admin)",
		Long: `A gateway holds every tools/call of a tool that is not read-only until a
person decides. Denied or timed-out calls fail; the upstream never sees them.

The calling client's own session never approves its call: a client that
declared elicitation is only told the approval id and this command. Approve
here, with the gateway's admin token. (An operator can let callers approve by
elicitation per upstream with caller_elicitation_approves: true, at the risk
that a compromised agent approves its own writes; see docs/gateway.md.)`,
	}
	c.AddCommand(newApprovalsListCmd(env), newApprovalsDecideCmd(env, true), newApprovalsDecideCmd(env, false))
	return c
}

func newApprovalsListCmd(env *Env) *cobra.Command {
	var (
		gf     gatewayFlags
		asJSON bool
	)
	c := &cobra.Command{
		Use:     "list --gateway URL [--json]",
		Short:   "List pending approvals",
		Example: `  chatmcp approvals list --gateway https://127.0.0.1:8443 --json`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := gf.admin(c, env)
			if err != nil {
				return err
			}
			l, err := a.Approvals(c.Context())
			if err != nil {
				return gatewayError(err)
			}
			if asJSON {
				if l == nil {
					l = l[:0]
				}
				return printJSONLine(env.Stdout, l)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPRINCIPAL\tTOOL\tARGUMENTS SHA-256\tEXPIRES IN")
			for _, ap := range l {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.16s…\t%s\n", ap.ID, ap.Principal, ap.Tool, ap.ArgumentsSHA256, ap.Expires.Sub(env.now()).Round(time.Second))
			}
			return tw.Flush()
		},
	}
	gf.register(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")
	return c
}

func newApprovalsDecideCmd(env *Env, approve bool) *cobra.Command {
	var gf gatewayFlags
	verb, done := "deny", "denied"
	if approve {
		verb, done = "approve", "approved"
	}
	c := &cobra.Command{
		Use:     verb + " --gateway URL ID",
		Short:   fmt.Sprintf("%s a pending tool call", map[bool]string{true: "Approve", false: "Deny"}[approve]),
		Example: fmt.Sprintf(`  chatmcp approvals %s --gateway https://127.0.0.1:8443 ID`, verb),
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, err := gf.admin(c, env)
			if err != nil {
				return err
			}
			if err := a.Decide(c.Context(), args[0], approve); err != nil {
				return gatewayError(err)
			}
			fmt.Fprintf(env.Stderr, "%s %s\n", done, args[0])
			return nil
		},
	}
	gf.register(c)
	return c
}
