package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newToolsCmd(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "tools",
		Short: "Review tool definitions that changed since the gateway pinned them (admin)",
		Long: `A gateway pins each upstream tool's definition by hash. A changed definition
disables the tool (not listed, calls refused) until approved here.`,
	}
	c.AddCommand(newToolsPendingCmd(env), newToolsApproveCmd(env))
	return c
}

func newToolsPendingCmd(env *Env) *cobra.Command {
	var (
		gf     gatewayFlags
		asJSON bool
	)
	c := &cobra.Command{
		Use:     "pending --gateway URL [--json]",
		Short:   "List changed tool definitions",
		Example: `  chatmcp tools pending --gateway https://127.0.0.1:8443`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := gf.admin(c, env)
			if err != nil {
				return err
			}
			l, err := a.PendingTools(c.Context())
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
			fmt.Fprintln(tw, "NAME\tPINNED SHA-256\tNEW SHA-256")
			for _, t := range l {
				fmt.Fprintf(tw, "%s\t%.16s…\t%.16s…\n", t.Name, t.OldSHA256, t.NewSHA256)
			}
			return tw.Flush()
		},
	}
	gf.register(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the list, with the new definitions, as JSON")
	return c
}

func newToolsApproveCmd(env *Env) *cobra.Command {
	var gf gatewayFlags
	c := &cobra.Command{
		Use:     "approve --gateway URL NAME",
		Short:   "Pin a changed tool definition, enabling the tool again",
		Example: `  chatmcp tools approve --gateway https://127.0.0.1:8443 fs_read_file`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, err := gf.admin(c, env)
			if err != nil {
				return err
			}
			if err := a.ApproveTool(c.Context(), args[0]); err != nil {
				return gatewayError(err)
			}
			fmt.Fprintf(env.Stderr, "approved %s\n", args[0])
			return nil
		},
	}
	gf.register(c)
	return c
}
