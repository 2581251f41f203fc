package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/linediff"
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
				fmt.Fprintf(tw, "%s\t%.16s…\t%s\n", t.Name, t.OldSHA256, t.NewSHA256)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, t := range l {
				printDefinitionDiff(env.Stdout, t)
			}
			return nil
		},
	}
	gf.register(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the list, with the pinned and new definitions, as JSON")
	return c
}

// printDefinitionDiff prints a unified-style line diff of a pending
// tool's pinned and new definitions.
func printDefinitionDiff(w io.Writer, t gwclient.PendingTool) {
	fmt.Fprintf(w, "\n%s: approve with --sha256 %s\n", t.Name, t.NewSHA256)
	if t.OldDefinition == nil {
		fmt.Fprintf(w, "--- pinned %s (definition not recorded: the pins file predates recorded definitions)\n", t.OldSHA256)
	} else {
		fmt.Fprintf(w, "--- pinned %s\n", t.OldSHA256)
	}
	fmt.Fprintf(w, "+++ new %s\n", t.NewSHA256)
	for _, line := range linediff.JSON(t.OldDefinition, t.Definition) {
		fmt.Fprintln(w, line)
	}
}

func newToolsApproveCmd(env *Env) *cobra.Command {
	var (
		gf   gatewayFlags
		hash string
	)
	c := &cobra.Command{
		Use:   "approve --gateway URL --sha256 HEX NAME",
		Short: "Pin a reviewed tool definition, enabling the tool again",
		Long: `Approve pins the pending definition of NAME only if it still has the SHA-256
given with --sha256: the new_sha256 that "chatmcp tools pending --json" showed
with the definition you reviewed. If the upstream changed the definition since,
the gateway refuses (reason "sha256 mismatch", exit 3) and the tool stays
disabled: review the new definition and approve its hash.

Without --sha256, approve prints the pending definition and its hash and exits
1 without approving anything.`,
		Example: `  chatmcp tools pending --gateway https://127.0.0.1:8443 --json
  chatmcp tools approve --gateway https://127.0.0.1:8443 fs_read_file
  chatmcp tools approve --gateway https://127.0.0.1:8443 --sha256 3f5a…e1 fs_read_file`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			name := args[0]
			a, err := gf.admin(c, env)
			if err != nil {
				return err
			}
			if hash == "" {
				return showPending(c, env, a, name)
			}
			if err := a.ApproveTool(c.Context(), name, hash); err != nil {
				switch reason, _ := gwclient.ReasonOf(err); reason {
				case gatewayapi.ReasonSHA256Mismatch:
					return &ExitError{Code: ExitRejected, Err: err,
						Hint: "the definition changed after it was reviewed; review it again with chatmcp tools approve --gateway URL " + name}
				case gatewayapi.ReasonNotPending:
					return &ExitError{Code: ExitUsage, Err: err, Hint: "chatmcp tools pending lists the changed definitions"}
				}
				return gatewayError(err)
			}
			fmt.Fprintf(env.Stderr, "approved %s (sha256 %s)\n", name, hash)
			return nil
		},
	}
	gf.register(c)
	c.Flags().StringVar(&hash, "sha256", "", "the new_sha256 of the pending definition you reviewed (required to approve)")
	return c
}

// showPending prints the pending definition of name for review and fails:
// nothing is approved without the hash of what was read.
func showPending(c *cobra.Command, env *Env, a *gwclient.Admin, name string) error {
	l, err := a.PendingTools(c.Context())
	if err != nil {
		return gatewayError(err)
	}
	for _, t := range l {
		if t.Name != name {
			continue
		}
		var def bytes.Buffer
		if err := json.Indent(&def, t.Definition, "", "  "); err != nil {
			def.Reset()
			def.Write(t.Definition)
		}
		fmt.Fprintf(env.Stdout, "name: %s\npinned sha256: %s\nnew sha256: %s\ndefinition:\n%s\n", t.Name, t.OldSHA256, t.NewSHA256, def.Bytes())
		return &ExitError{Code: ExitUsage, Err: errors.New("--sha256 is required: nothing approved"),
			Hint: fmt.Sprintf("review the definition above, then: chatmcp tools approve --gateway URL --sha256 %s %s", t.NewSHA256, name)}
	}
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf("no changed definition of %s is pending", name),
		Hint: "chatmcp tools pending lists the changed definitions"}
}
