package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/wallet"
)

// chatFlags are the flags every chat subcommand takes.
type chatFlags struct {
	relay, wallet, home string
	// agentPolicy is the attestation policy agent devices must satisfy
	// before this client wraps a content key to them (chat_agent.go).
	agentPolicy string
	// pay pays recipients' prices (chat_pay.go; send's flags).
	pay chatPay
}

// newChatCmd is the `chatmcp chat` group: end-to-end encrypted messaging.
func newChatCmd(env *Env) *cobra.Command {
	f := &chatFlags{}
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "End-to-end encrypted messaging signed in with a Solana wallet",
		Long: `End-to-end encrypted messaging through a ChatMCP relay, signed in with a
Solana wallet (Sign-In With Solana). Messages are sealed on this machine to
every device of every member; the relay sees only ciphertext. See
docs/messaging.md.

Every subcommand takes --relay URL (or CHATMCP_RELAY), --wallet FILE (or
CHATMCP_WALLET, a solana-keygen keypair file) and --home DIR (client state:
device keys and sessions, one subdirectory per wallet; default ~/.chatmcp).
Commands sign in on their own when there is no valid session.

A first message to someone who has not allowed you needs a proof-of-work
stamp: the client mints it (about a second) when the relay asks. If they set
a price ('chatmcp chat price'), 'chat send --pay-max N --pay-asset MINT --pay-rpc URL' pays it
from your wallet instead (x402; docs/payments.md).

Exit codes:
  0  success
  1  usage, input/output or network error
  2  invalid input, or a received message failed verification (tampered or
     forged)
  3  the relay refused the request (not a member, stamp required, unknown
     conversation, revoked device …)`,
		Example: `  chatmcp wallet new -o alice.json
  chatmcp chat login --relay https://relay.example.com --wallet alice.json
  chatmcp chat send --to BOB_ADDRESS "hello bob" --relay https://relay.example.com --wallet alice.json
  chatmcp chat group create --members BOB,CAROL ...
  chatmcp chat read --json ...`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.relay, "relay", "", "relay URL (default $CHATMCP_RELAY)")
	pf.StringVar(&f.wallet, "wallet", "", "wallet keypair file (default $CHATMCP_WALLET)")
	pf.StringVar(&f.home, "home", "", "client state directory (default $CHATMCP_HOME or ~/.chatmcp)")
	pf.StringVar(&f.agentPolicy, "agent-policy", "", "attestation policy an agent member's evidence must satisfy to get message keys (default $CHATMCP_AGENT_POLICY; none: no agent gets keys)")

	cmd.AddCommand(
		newChatLoginCmd(env, f),
		newChatSendCmd(env, f),
		newChatGroupCmd(env, f),
		newChatConversationsCmd(env, f),
		newChatReadCmd(env, f),
		newChatWatchCmd(env, f),
		newChatRequestsCmd(env, f),
		newChatConsentCmd(env, f, "allow", "Allow a sender: their requests move to your inbox, no stamps needed after", true),
		newChatDenyCmd(env, f, newChatConsentCmd(env, f, "deny", "Deny a sender: nothing more from them is delivered to you", false)),
		newChatDevicesCmd(env, f),
		newChatDifficultyCmd(env, f),
		newChatPriceCmd(env, f),
		newChatAgentCmd(env, f),
		newChatApprovalsCmd(env, f),
		newChatDecideCmd(env, f, true),
	)
	return cmd
}

// newChatLoginCmd is `chatmcp chat login`.
func newChatLoginCmd(env *Env, f *chatFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "login",
		Short: "Sign in to the relay and register this device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd.Context(), env, func(ctx context.Context, c *chat.Client) (string, error) {
				if err := c.Login(ctx); err != nil {
					return "", err
				}
				return fmt.Sprintf("signed in as %s (device %s)", c.Address(), c.Device().Cert.Device), nil
			})
		},
	}
}

// newChatSendCmd is `chatmcp chat send`.
func newChatSendCmd(env *Env, f *chatFlags) *cobra.Command {
	var to, conversation string
	send := &cobra.Command{
		Use:   "send (--to ADDRESS | --conversation ID) TEXT",
		Short: "Send a message to a person or a conversation",
		Example: `  chatmcp chat send --to 4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi "hello"
  chatmcp chat send --conversation 0f1e2d3c4b5a69788796a5b4c3d2e1f0 "hello all"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (to == "") == (conversation == "") {
				return &ExitError{Code: ExitUsage, Err: errors.New("exactly one of --to and --conversation is required")}
			}
			text := strings.Join(args, " ")
			c, err := f.client(env)
			if err != nil {
				return err
			}
			var sent *chat.Sent
			if to != "" {
				a, err := parseAddress(to)
				if err != nil {
					return err
				}
				sent, err = c.SendDM(cmd.Context(), a, text)
				if err != nil {
					return chatErr(err)
				}
			} else if sent, err = c.Send(cmd.Context(), conversation, text); err != nil {
				return chatErr(err)
			}
			fmt.Fprintf(env.Stdout, "sent %s to conversation %s\n", sent.ID, sent.Conversation)
			warnWithheld(env, sent)
			for _, a := range sent.Requested {
				// The relay hides a denial from the sender by design, so
				// this is all a sender can know: not delivered to the inbox.
				fmt.Fprintf(env.Stdout, "%s has not accepted you: the message went to their requests, where it waits until they allow you (if they denied you, it was dropped; the relay does not tell senders which)\n", a)
			}
			return nil
		},
	}
	send.Flags().StringVar(&to, "to", "", "recipient wallet address (direct conversation)")
	send.Flags().StringVar(&conversation, "conversation", "", "conversation ID")
	f.pay.register(send)
	return send
}

// newChatGroupCmd is `chatmcp chat group` and its subcommands.
func newChatGroupCmd(env *Env, f *chatFlags) *cobra.Command {
	group := &cobra.Command{Use: "group", Short: "Create groups and change their members"}
	group.AddCommand(newChatGroupCreateCmd(env, f), newChatGroupAddCmd(env, f), newChatGroupRemoveCmd(env, f))
	return group
}

// newChatGroupCreateCmd is `chatmcp chat group create`.
func newChatGroupCreateCmd(env *Env, f *chatFlags) *cobra.Command {
	var members string
	create := &cobra.Command{
		Use:     "create --members A,B,…",
		Short:   "Create a group with you and the members; prints its conversation ID",
		Example: "  chatmcp chat group create --members BOB_ADDRESS,CAROL_ADDRESS",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []wallet.Address
			for _, m := range strings.Split(members, ",") {
				if m = strings.TrimSpace(m); m == "" {
					continue
				}
				a, err := parseAddress(m)
				if err != nil {
					return err
				}
				list = append(list, a)
			}
			if len(list) == 0 {
				return &ExitError{Code: ExitUsage, Err: errors.New("--members is required"), Hint: "--members ADDRESS,ADDRESS"}
			}
			return f.run(cmd.Context(), env, func(ctx context.Context, c *chat.Client) (string, error) {
				return c.CreateGroup(ctx, list)
			})
		},
	}
	create.Flags().StringVar(&members, "members", "", "comma-separated member wallet addresses")
	return create
}

// newChatGroupRemoveCmd is `chatmcp chat group remove`.
func newChatGroupRemoveCmd(env *Env, f *chatFlags) *cobra.Command {
	return newChatGroupMemberCmd(env, f, "remove", "Remove a member from a group you created", (*chat.Client).RemoveMember, "removed %s from %s")
}

// newChatGroupAddCmd is `chatmcp chat group add`.
func newChatGroupAddCmd(env *Env, f *chatFlags) *cobra.Command {
	return newChatGroupMemberCmd(env, f, "add", "Add a member to a group you created (mints a stamp if they have not allowed you)", (*chat.Client).AddMember, "added %s to %s")
}

// newChatGroupMemberCmd is a `chatmcp chat group` subcommand named use that
// applies change to one member of --conversation and prints done (a format
// of the address and the conversation).
func newChatGroupMemberCmd(env *Env, f *chatFlags, use, short string, change func(*chat.Client, context.Context, string, wallet.Address) error, done string) *cobra.Command {
	var conversation string
	cmd := &cobra.Command{
		Use:   use + " --conversation ID ADDRESS",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if conversation == "" {
				return &ExitError{Code: ExitUsage, Err: errors.New("--conversation is required")}
			}
			a, err := parseAddress(args[0])
			if err != nil {
				return err
			}
			return f.run(cmd.Context(), env, func(ctx context.Context, c *chat.Client) (string, error) {
				return fmt.Sprintf(done, a, conversation), change(c, ctx, conversation, a)
			})
		},
	}
	cmd.Flags().StringVar(&conversation, "conversation", "", "conversation ID")
	return cmd
}

// newChatConversationsCmd is `chatmcp chat conversations`.
func newChatConversationsCmd(env *Env, f *chatFlags) *cobra.Command {
	var asJSON bool
	conversations := &cobra.Command{
		Use:   "conversations [--json]",
		Short: "List your conversations, and those from creators you have not allowed yet (requests)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd.Context(), env, func(ctx context.Context, c *chat.Client) (string, error) {
				inbox, requests, err := c.Conversations(ctx)
				if err != nil {
					return "", err
				}
				if asJSON {
					b, err := json.Marshal(relayapi.ConversationsResponse{Conversations: inbox, Requests: requests})
					return string(b), err
				}
				for _, id := range inbox {
					fmt.Fprintln(env.Stdout, id)
				}
				for _, id := range requests {
					fmt.Fprintf(env.Stdout, "%s (request)\n", id)
				}
				return "", nil
			})
		},
	}
	conversations.Flags().BoolVar(&asJSON, "json", false, "print {\"conversations\": […], \"requests\": […]}")
	return conversations
}

// pageFlags are the listing flags of read and requests.
type pageFlags struct {
	asJSON bool
	after  int64
	limit  int
}

func (p *pageFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&p.asJSON, "json", false, "print a JSON array")
	cmd.Flags().Int64Var(&p.after, "after", 0, "cursor: only messages after this sequence number")
	cmd.Flags().IntVar(&p.limit, "limit", 0, "print one page of at most this many messages (default: all)")
}

// newChatReadCmd is `chatmcp chat read`.
func newChatReadCmd(env *Env, f *chatFlags) *cobra.Command {
	var conversation string
	var p pageFlags
	read := &cobra.Command{
		Use:   "read [--conversation ID] [--json]",
		Short: "Print your inbox, or one conversation (requests included, marked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(env)
			if err != nil {
				return err
			}
			o := chat.ReadOptions{Conversation: conversation, After: p.after, Limit: p.limit}
			if conversation == "" {
				o.Folder = relayapi.FolderInbox
			}
			return listMessages(cmd.Context(), env, c, o, p.asJSON, p.limit > 0)
		},
	}
	read.Flags().StringVar(&conversation, "conversation", "", "only this conversation")
	p.register(read)
	return read
}

// newChatRequestsCmd is `chatmcp chat requests`.
func newChatRequestsCmd(env *Env, f *chatFlags) *cobra.Command {
	var p pageFlags
	requests := &cobra.Command{
		Use:   "requests [--json]",
		Short: "Print messages from people you have not allowed yet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(env)
			if err != nil {
				return err
			}
			return listMessages(cmd.Context(), env, c, chat.ReadOptions{Folder: relayapi.FolderRequests, After: p.after, Limit: p.limit}, p.asJSON, p.limit > 0)
		},
	}
	p.register(requests)
	return requests
}

// newChatWatchCmd is `chatmcp chat watch`.
func newChatWatchCmd(env *Env, f *chatFlags) *cobra.Command {
	var asJSON bool
	var after int64
	watch := &cobra.Command{
		Use:   "watch [--json]",
		Short: "Print messages live as they arrive (over WebSocket) until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(env)
			if err != nil {
				return err
			}
			err = c.Watch(cmd.Context(), after, func(m chat.Message) error {
				return printMessage(env.Stdout, m, asJSON)
			})
			return chatErr(err)
		},
	}
	watch.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	watch.Flags().Int64Var(&after, "after", 0, "also print stored messages after this sequence number (default: all)")
	return watch
}

// newChatConsentCmd is `chatmcp chat allow` (allow true) or `chatmcp chat
// deny`.
func newChatConsentCmd(env *Env, f *chatFlags, use, short string, allow bool) *cobra.Command {
	return &cobra.Command{
		Use:   use + " ADDRESS",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := parseAddress(args[0])
			if err != nil {
				return err
			}
			consent, done := (*chat.Client).Deny, "denied "
			if allow {
				consent, done = (*chat.Client).Allow, "allowed "
			}
			return f.run(cmd.Context(), env, func(ctx context.Context, c *chat.Client) (string, error) {
				return done + a.String(), consent(c, ctx, a)
			})
		},
	}
}

// newChatDevicesCmd is `chatmcp chat devices` and `chatmcp chat devices
// revoke`.
func newChatDevicesCmd(env *Env, f *chatFlags) *cobra.Command {
	var asJSON bool
	devices := &cobra.Command{
		Use:   "devices [--json]",
		Short: "List this wallet's devices on the relay",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(env)
			if err != nil {
				return err
			}
			devs, err := c.Devices(cmd.Context())
			if err != nil {
				return chatErr(err)
			}
			if asJSON {
				return writeJSONLine(env.Stdout, devs)
			}
			for _, d := range devs {
				state := "active"
				if d.Revoked != 0 {
					state = "revoked " + time.UnixMilli(d.Revoked).UTC().Format(time.RFC3339)
				}
				this := ""
				if d.Cert.Device == c.Device().Cert.Device {
					this = " (this device)"
				}
				fmt.Fprintf(env.Stdout, "%s  created %s  %s%s\n", d.Cert.Device, time.UnixMilli(d.Cert.Created).UTC().Format(time.RFC3339), state, this)
			}
			return nil
		},
	}
	devices.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	devices.AddCommand(newChatDevicesRevokeCmd(env, f))
	return devices
}

// newChatDevicesRevokeCmd is `chatmcp chat devices revoke`.
func newChatDevicesRevokeCmd(env *Env, f *chatFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a device: later messages are not encrypted to it and its sessions end",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd.Context(), env, func(ctx context.Context, c *chat.Client) (string, error) {
				return "revoked device " + args[0], c.RevokeDevice(ctx, args[0])
			})
		},
	}
}

// newChatDifficultyCmd is `chatmcp chat difficulty`.
func newChatDifficultyCmd(env *Env, f *chatFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "difficulty BITS",
		Short: "Set the proof-of-work difficulty (leading zero bits) strangers must pay you",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var bits int
			if _, err := fmt.Sscanf(args[0], "%d", &bits); err != nil {
				return exitf(ExitUsage, "difficulty %q is not a number", args[0])
			}
			return f.run(cmd.Context(), env, func(ctx context.Context, c *chat.Client) (string, error) {
				return fmt.Sprintf("difficulty set to %d bits", bits), c.SetDifficulty(ctx, bits)
			})
		},
	}
}

func (f *chatFlags) client(env *Env) (*chat.Client, error) {
	return f.clientWith(env, "")
}

// run is the body of a subcommand that acts through the chat client: it
// builds the client, calls do, maps do's error with chatErr and, when do
// succeeds with a non-empty line, prints the line.
func (f *chatFlags) run(ctx context.Context, env *Env, do func(context.Context, *chat.Client) (line string, err error)) error {
	c, err := f.client(env)
	if err != nil {
		return err
	}
	line, err := do(ctx, c)
	if err != nil {
		return chatErr(err)
	}
	if line != "" {
		fmt.Fprintln(env.Stdout, line)
	}
	return nil
}

// clientWith is client with agentPolicyFile (if non-empty) in place of
// --agent-policy and $CHATMCP_AGENT_POLICY.
func (f *chatFlags) clientWith(env *Env, agentPolicyFile string) (*chat.Client, error) {
	relayURL := firstNonEmpty(f.relay, env.getenv("CHATMCP_RELAY"))
	walletFile := firstNonEmpty(f.wallet, env.getenv("CHATMCP_WALLET"))
	if relayURL == "" {
		return nil, &ExitError{Code: ExitUsage, Err: errors.New("--relay URL is required"), Hint: "or set CHATMCP_RELAY"}
	}
	if walletFile == "" {
		return nil, &ExitError{Code: ExitUsage, Err: errors.New("--wallet FILE is required"), Hint: "create one with 'chatmcp wallet new -o FILE'"}
	}
	home, err := f.homeDir(env)
	if err != nil {
		return nil, err
	}
	w, err := wallet.LoadFile(walletFile)
	if err != nil {
		return nil, exitf(ExitUsage, "%w", err)
	}
	pol, err := f.loadAgentPolicy(env, agentPolicyFile)
	if err != nil {
		return nil, err
	}
	payer, err := f.pay.payer(env, w)
	if err != nil {
		return nil, err
	}
	c, err := chat.New(&chat.Options{Relay: relayURL, Wallet: w, Home: home, Now: env.Now, AgentPolicy: pol, Payer: payer})
	if err != nil {
		return nil, exitf(ExitUsage, "%w", err)
	}
	return c, nil
}

// homeDir is the client state directory: --home, $CHATMCP_HOME or
// ~/.chatmcp (chatmcp web uses the same).
func (f *chatFlags) homeDir(env *Env) (string, error) {
	if home := firstNonEmpty(f.home, env.getenv("CHATMCP_HOME")); home != "" {
		return home, nil
	}
	h := env.getenv("HOME")
	if h == "" {
		return "", &ExitError{Code: ExitUsage, Err: errors.New("--home DIR is required when $HOME is unset")}
	}
	return filepath.Join(h, ".chatmcp"), nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func parseAddress(s string) (wallet.Address, error) {
	a, err := wallet.ParseAddress(s)
	if err != nil {
		return a, exitf(ExitInvalid, "%w", err)
	}
	return a, nil
}

// chatErr maps relay refusals to ExitRejected and keeps other errors.
func chatErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	var ae *chat.APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 || errors.Is(err, chat.ErrNotPermitted) {
		return &ExitError{Code: ExitRejected, Err: err}
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return &ExitError{Code: ExitUsage, Err: err}
}

// listMessages prints messages; a message that failed verification makes
// the command exit 2 after everything is printed.
func listMessages(ctx context.Context, env *Env, c *chat.Client, o chat.ReadOptions, asJSON, onePage bool) error {
	var msgs []chat.Message
	var err error
	if onePage {
		msgs, _, err = c.Read(ctx, o)
	} else {
		msgs, err = c.ReadAll(ctx, o)
	}
	if err != nil {
		return chatErr(err)
	}
	if asJSON {
		if msgs == nil {
			msgs = []chat.Message{}
		}
		if err := writeJSONLine(env.Stdout, msgs); err != nil {
			return err
		}
	} else {
		for _, m := range msgs {
			printMessage(env.Stdout, m, false)
		}
		if len(msgs) == 0 {
			fmt.Fprintln(env.Stdout, emptyListing(o))
		}
	}
	rejected := 0
	for _, m := range msgs {
		if m.Err != "" && !m.NotForDevice {
			rejected++
		}
	}
	if rejected > 0 {
		return exitf(ExitInvalid, "%d message(s) rejected: failed verification (tampered or forged)", rejected)
	}
	return nil
}

// emptyListing is the line printed instead of no messages, so that an
// empty result is not mistaken for a command that did nothing.
func emptyListing(o chat.ReadOptions) string {
	switch {
	case o.After > 0:
		return fmt.Sprintf("no messages after sequence number %d", o.After)
	case o.Conversation != "":
		return "no messages in conversation " + o.Conversation
	case o.Folder == relayapi.FolderRequests:
		return "no requests: nobody you have not allowed has written to you"
	default:
		return "your inbox is empty (messages from people you have not allowed yet are under 'chatmcp chat requests')"
	}
}

func printMessage(w io.Writer, m chat.Message, asJSON bool) error {
	if asJSON {
		return writeJSONLine(w, m)
	}
	body := m.Text
	if m.Err != "" {
		body = "[rejected: " + m.Err + "]"
		if m.NotForDevice {
			body = "[not encrypted to this device]"
		}
	}
	mark := ""
	if m.Folder == relayapi.FolderRequests {
		mark = " (request)"
	}
	_, err := fmt.Fprintf(w, "%d %s %s %s%s: %s\n", m.Seq, m.SentAt.Format(time.RFC3339), m.Conversation, m.Sender, mark, body)
	return err
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v, jsontext.Multiline(false))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
