package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/gwclient"
)

func newApprovalsCmd(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "approvals",
		Short: "List, approve and deny tool calls waiting for a person (admin)",
		Long: `A gateway holds every tools/call of a tool that is not read-only until a
person decides: the caller's request blocks meanwhile, for up to the gateway's
approval_timeout (default 2m), or less if the client gives up first (many
give up after 60s unless the gateway's progress notifications keep them
waiting; see docs/gateway.md). Denied or timed-out calls fail; the upstream
never sees them.

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
		Use:   "list --gateway URL [--json]",
		Short: "List pending approvals",
		Long: `Lists the calls waiting for a person, oldest first: the approval id, the
tool, who asked (the token's subject, or token:ID), how long ago, how long
until it times out, and the arguments as the gateway redacted them (its
layer-1 secrets and the caller's layer-2 credentials are replaced), cut at
` + fmt.Sprint(maxArgumentsShown) + ` characters. --json prints every field, the full arguments and their
SHA-256 included.`,
		Example: `  chatmcp approvals list --gateway https://127.0.0.1:8443
  chatmcp approvals list --gateway https://127.0.0.1:8443 --json`,
		Args: cobra.NoArgs,
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
			return printApprovals(env.Stdout, l, env.now())
		},
	}
	gf.register(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")
	return c
}

// maxArgumentsShown is where the plain listing cuts a call's arguments.
const maxArgumentsShown = 60

// printApprovals writes l as a table, one call per line.
func printApprovals(w io.Writer, l []gwclient.Approval, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTOOL\tASKED BY\tASKED\tEXPIRES IN\tARGUMENTS (REDACTED)")
	for _, ap := range l {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\t%s\n", printable(ap.ID), printable(ap.Tool), printable(ap.Principal),
			now.Sub(ap.Created).Round(time.Second), ap.Expires.Sub(now).Round(time.Second), argumentsSummary(ap.Arguments, maxArgumentsShown))
	}
	return tw.Flush()
}

// argumentsSummary is raw (a JSON object) on one line, cut at max
// characters with "…".
func argumentsSummary(raw json.RawMessage, max int) string {
	var b bytes.Buffer
	if len(raw) == 0 || string(raw) == "null" {
		return "{}"
	}
	if err := json.Compact(&b, raw); err != nil {
		return "(unreadable)"
	}
	s := printable(b.String())
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// printable replaces what a terminal would interpret (control and other
// non-printing characters) in text from the gateway.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
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
