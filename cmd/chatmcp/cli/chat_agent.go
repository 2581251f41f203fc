package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/wallet"
)

// The assistant in conversations (docs/agent.md): invite an attested agent
// with a grant derived from your own gateway token, see what it runs,
// check its receipts, approve or deny the writes it asks for, and take it
// all back.

// defaultGrantTTL is the lifetime of a grant when --ttl is not given; a
// grant never outlives the token it is derived from.
const defaultGrantTTL = time.Hour

// statementLifetime is how long an approval statement counts: long enough
// to reach the gateway, well under agentapi.MaxStatementLifetime.
const statementLifetime = 5 * time.Minute

// loadAgentPolicy reads the agent policy: file, else --agent-policy, else
// $CHATMCP_AGENT_POLICY. With none of them it returns nil: the chat
// client's zero policy, which no evidence satisfies.
func (f *chatFlags) loadAgentPolicy(env *Env, file string) (*attest.Policy, error) {
	file = firstNonEmpty(file, f.agentPolicy, env.getenv("CHATMCP_AGENT_POLICY"))
	if file == "" {
		return nil, nil
	}
	p, err := attest.LoadPolicy(file)
	if err != nil {
		return nil, exitf(ExitUsage, "loading agent policy: %w", err)
	}
	return p, nil
}

// warnWithheld tells the sender which agent devices got no key.
func warnWithheld(env *Env, sent *chat.Sent) {
	for _, w := range sent.Withheld {
		fmt.Fprintf(env.Stderr, "chatmcp: warning: not encrypted for %s: %s (your agent policy rejects it; see 'chatmcp chat agent inspect')\n", w.Wallet, w.Reason)
	}
}

// agentErr maps an agent verification failure to its exit code: malformed
// evidence is ExitInvalid, evidence a policy rejects ExitRejected; other
// errors are chatErr's.
func agentErr(err error) error {
	if check, ok := agentapi.CheckOf(err); ok {
		code := ExitRejected
		if check == agentapi.CheckMalformed {
			code = ExitInvalid
		}
		return &ExitError{Code: code, Err: err}
	}
	if errors.Is(err, chat.ErrAgentRefused) {
		return &ExitError{Code: ExitRejected, Err: err}
	}
	return chatErr(err)
}

// newChatAgentCmd is `chatmcp chat agent` and its subcommands.
func newChatAgentCmd(env *Env, f *chatFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "agent",
		Short: "Invite an attested assistant into a conversation, inspect it, check its receipts, remove it",
		Long: `An agent (chatmcp-agent) is a member whose device publishes TEE evidence
binding its keys and its configuration: model endpoint and whether it is
attested, system prompt, gateway, limits. Your client wraps message keys to
it only when that evidence satisfies your agent policy (--agent-policy or
$CHATMCP_AGENT_POLICY; without one, no agent gets keys). See docs/agent.md.`,
	}
	c.AddCommand(newChatAgentAddCmd(env, f), newChatAgentRemoveCmd(env, f), newChatAgentInspectCmd(env, f), newChatAgentReceiptCmd(env, f))
	return c
}

// agentDeviceJSON is one verified agent device in --json output.
type agentDeviceJSON struct {
	Device       string          `json:"device"`
	Claims       *attest.Claims  `json:"claims"`
	ConfigSHA256 string          `json:"config_sha256"`
	Config       agentapi.Config `json:"config"`
}

// newChatAgentInspectCmd is `chatmcp chat agent inspect`.
func newChatAgentInspectCmd(env *Env, f *chatFlags) *cobra.Command {
	var policy string
	var asJSON bool
	c := &cobra.Command{
		Use:   "inspect ADDRESS --policy FILE [--json]",
		Short: "Verify an agent's evidence and print what it runs",
		Long: `Fetches the agent's devices from the relay and verifies each one's evidence
against the policy: the report data binds the device's keys and its
configuration, and the evidence satisfies the policy. Prints the claims and
the configuration the evidence binds. Exits 0 only when every device passes;
otherwise one line names the device and the failed check.

Exit codes: 0 verified; 1 usage or network error; 2 malformed evidence;
3 the evidence fails the policy (or the agent publishes none).`,
		Example: `  chatmcp chat agent inspect AGENT_ADDRESS --policy agent-policy.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := parseAddress(args[0])
			if err != nil {
				return err
			}
			if policy == "" {
				return &ExitError{Code: ExitUsage, Err: errors.New("--policy FILE is required"), Hint: "an attestation policy the agent's evidence must satisfy (docs/attestation.md)"}
			}
			cl, err := f.clientWith(env, policy)
			if err != nil {
				return err
			}
			devs, err := cl.InspectAgent(cmd.Context(), a, nil)
			if err != nil {
				return agentErr(err)
			}
			if asJSON {
				out := make([]agentDeviceJSON, 0, len(devs))
				for _, d := range devs {
					out = append(out, agentDeviceJSON{Device: d.Cert.Device, Claims: d.Claims, ConfigSHA256: d.Evidence.Config.Digest().String(), Config: d.Evidence.Config})
				}
				return printJSONLine(env.Stdout, out)
			}
			fmt.Fprintf(env.Stdout, "agent %s: evidence verified for %d device(s)\n", a, len(devs))
			for _, d := range devs {
				printAgentDevice(env.Stdout, &d)
			}
			return nil
		},
	}
	c.Flags().StringVar(&policy, "policy", "", "attestation policy the agent's evidence must satisfy (required)")
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON list, one object per device")
	return c
}

func printAgentDevice(w io.Writer, d *chat.AgentDevice) {
	cfg := d.Evidence.Config
	tee := string(d.Claims.TEE)
	if d.Claims.TEE == attest.Sim {
		tee += " (SIMULATED: no hardware protects this agent; accepted only because your policy allows sim)"
	}
	model := "attested: no (plaintext goes to an endpoint nobody attested)"
	if cfg.Model.Attested {
		model = "attested: yes, policy sha256 " + cfg.Model.PolicySHA256.String()
	}
	fmt.Fprintf(w, "device %s\n", d.Cert.Device)
	fmt.Fprintf(w, "  tee:           %s\n", tee)
	fmt.Fprintf(w, "  measurement:   %s\n", d.Claims.Measurement)
	fmt.Fprintf(w, "  debug:         %v\n", d.Claims.Debug)
	fmt.Fprintf(w, "  configuration: sha256 %s\n", cfg.Digest())
	fmt.Fprintf(w, "  name:          @%s\n", printable(cfg.Name))
	fmt.Fprintf(w, "  model:         %s at %s, %s\n", printable(cfg.Model.Model), printable(cfg.Model.URL), model)
	fmt.Fprintf(w, "  gateway:       %s, policy sha256 %s\n", printable(cfg.Gateway.URL), cfg.Gateway.PolicySHA256)
	fmt.Fprintf(w, "  limits:        max_tokens %d, tool_calls_per_turn %d, turns_per_minute %d, context_messages %d\n",
		cfg.Limits.MaxTokens, cfg.Limits.ToolCallsPerTurn, cfg.Limits.TurnsPerMinute, cfg.Limits.ContextMessages)
	fmt.Fprintf(w, "  system prompt: %q\n", cfg.SystemPrompt)
}

// parseTools splits a comma-separated list of tool patterns.
func parseTools(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil || len(p) > captoken.MaxStringLen {
			return nil, exitf(ExitUsage, "--tools: invalid pattern %q", p)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, &ExitError{Code: ExitUsage, Err: errors.New("--tools is required"), Hint: "comma-separated tool patterns, e.g. --tools 'notes_*'"}
	}
	return out, nil
}

// capabilityToken is --token, else $CHATMCP_TOKEN.
func capabilityToken(env *Env, flag string) (string, error) {
	if t := strings.TrimSpace(firstNonEmpty(flag, env.getenv("CHATMCP_TOKEN"))); t != "" {
		return t, nil
	}
	return "", &ExitError{Code: ExitUsage, Err: errors.New("no gateway token"), Hint: "pass --token or set CHATMCP_TOKEN (your own token, from 'chatmcp token mint')"}
}

// newChatAgentAddCmd is `chatmcp chat agent add`.
func newChatAgentAddCmd(env *Env, f *chatFlags) *cobra.Command {
	var conversation, agentAddr, policy, tools, token string
	var ttl time.Duration
	c := &cobra.Command{
		Use:   "add --conversation ID --agent ADDRESS --policy FILE --tools PATTERNS [--ttl D] [--token T]",
		Short: "Verify an agent, add it to a conversation and send it a grant",
		Long: `Verifies the agent's evidence against --policy (every device it has), adds
it to the conversation (a group you created; a direct conversation with the
agent already has it), and sends it, inside the encrypted conversation, a
grant: a capability token derived offline from your own gateway token
(--token or $CHATMCP_TOKEN), narrowed to --tools and --ttl, bound to the
agent and naming you as the approver of its calls that wait for approval.
The grant can never be wider than your token. The agent reads only messages
sealed after it joined.

When the agent's evidence fails the policy, one line names the failed check
and nothing changes.

Exit codes: 0 the agent is a member holding its grant; 1 usage or network
error; 2 malformed evidence or input; 3 the evidence fails the policy, or the
relay refused (you did not create the group …).`,
		Example: `  chatmcp chat agent add --conversation 0f1e… --agent AGENT_ADDRESS \
      --policy agent-policy.yaml --tools 'notes_*' --ttl 2h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if conversation == "" || agentAddr == "" || policy == "" {
				return &ExitError{Code: ExitUsage, Err: errors.New("--conversation, --agent and --policy are required")}
			}
			if !envelope.ValidID(conversation) {
				return exitf(ExitInvalid, "conversation ID %q is not 32 lowercase hex characters", conversation)
			}
			a, err := parseAddress(agentAddr)
			if err != nil {
				return err
			}
			patterns, err := parseTools(tools)
			if err != nil {
				return err
			}
			if ttl <= 0 {
				return exitf(ExitUsage, "--ttl must be positive")
			}
			parent, err := capabilityToken(env, token)
			if err != nil {
				return err
			}
			if _, err := captoken.Parse(parent); err != nil {
				return exitf(ExitInvalid, "--token: %w", err)
			}
			// The one policy decides both the check here and the key wraps
			// that follow.
			cl, err := f.clientWith(env, policy)
			if err != nil {
				return err
			}
			if _, err := cl.InspectAgent(ctx, a, nil); err != nil {
				return agentErr(fmt.Errorf("agent %s not added: %w", a, err))
			}
			grant, exp, err := deriveGrant(parent, patterns, env.now().Add(ttl), cl.Address(), a)
			if err != nil {
				return err
			}
			conv, err := cl.Membership(ctx, conversation)
			if err != nil {
				return chatErr(err)
			}
			dm := conv.IsDM(cl.Address(), a)
			if !conv.IsMember(a) {
				if err := cl.AddMember(ctx, conversation, a); err != nil {
					return chatErr(err)
				}
			}
			text, err := agentapi.Encode(&agentapi.Message{Kind: agentapi.KindGrant, Grant: &agentapi.Grant{
				Token: grant, Approver: cl.Address(), Agent: a, Tools: patterns, Expires: exp, Conversation: conversation}})
			if err != nil {
				return exitf(ExitUsage, "encoding the grant: %w", err)
			}
			var sent *chat.Sent
			if dm {
				sent, err = cl.SendDM(ctx, a, text)
			} else {
				sent, err = cl.Send(ctx, conversation, text)
			}
			if err != nil {
				return chatErr(fmt.Errorf("sending the grant: %w", err))
			}
			for _, w := range sent.Withheld {
				if w.Wallet.Equal(a) {
					return &ExitError{Code: ExitRejected, Err: fmt.Errorf("the grant was not encrypted for %s: %s", a, w.Reason)}
				}
			}
			warnWithheld(env, sent)
			pg, _ := captoken.Parse(grant)
			fmt.Fprintf(env.Stdout, "added %s to conversation %s with a grant for %s until %s (chain %s); you approve its calls that wait for approval\n",
				a, conversation, strings.Join(patterns, ","), exp.Format(time.RFC3339), pg.ChainID())
			return nil
		},
	}
	c.Flags().StringVar(&conversation, "conversation", "", "conversation ID (required)")
	c.Flags().StringVar(&agentAddr, "agent", "", "the agent's wallet address (required)")
	c.Flags().StringVar(&policy, "policy", "", "attestation policy the agent's evidence must satisfy (required)")
	c.Flags().StringVar(&tools, "tools", "", "comma-separated tool patterns the agent may call (required)")
	c.Flags().DurationVar(&ttl, "ttl", defaultGrantTTL, "lifetime of the grant (never past your token's)")
	c.Flags().StringVar(&token, "token", "", "your gateway token the grant is derived from (else $CHATMCP_TOKEN)")
	return c
}

// deriveGrant is chat.DeriveGrant with its error as ExitInvalid.
func deriveGrant(parent string, tools []string, expires time.Time, approver, holder wallet.Address) (string, time.Time, error) {
	grant, exp, err := chat.DeriveGrant(parent, tools, expires, approver, holder)
	if err != nil {
		return "", time.Time{}, &ExitError{Code: ExitInvalid, Err: err}
	}
	return grant, exp, nil
}

// grantsTo returns the grants this client sent to agent in conversation,
// oldest first (chat.Client.GrantsTo).
func grantsTo(ctx context.Context, cl *chat.Client, conversation string, agent wallet.Address) ([]*agentapi.Grant, error) {
	return cl.GrantsTo(ctx, conversation, agent)
}

// memberGateway is a client of the gateway's member endpoints at baseURL,
// trusting it by RA-TLS under policyFile (else $CHATMCP_POLICY).
func memberGateway(env *Env, baseURL, policyFile, policyFlag string) (*gwclient.Member, error) {
	if u, err := url.Parse(baseURL); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("gateway %q is not an https:// URL", baseURL), Hint: "pass --gateway https://host:port"}
	}
	trust, err := trustFor(policyFile, env, "")
	if err != nil {
		return nil, err
	}
	cfg, err := trust.TLSConfig()
	if err != nil {
		return nil, &ExitError{Code: ExitUsage, Err: err, Hint: "pass " + policyFlag + " FILE (or set CHATMCP_POLICY): the attestation policy the gateway must satisfy"}
	}
	return &gwclient.Member{BaseURL: baseURL, HTTP: &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}}, nil
}

// newChatAgentRemoveCmd is `chatmcp chat agent remove`.
func newChatAgentRemoveCmd(env *Env, f *chatFlags) *cobra.Command {
	var conversation, agentAddr, token, gateway, gatewayPolicy string
	c := &cobra.Command{
		Use:   "remove --conversation ID --agent ADDRESS [--token T] [--gateway URL] [--gateway-policy FILE]",
		Short: "Remove an agent from a conversation and revoke the grants you gave it there",
		Long: `Removes the agent from the group (messages sealed afterwards wrap no key for
it) and revokes at the gateway every grant you sent it in this conversation:
as the holder of the token they were derived from (--token or
$CHATMCP_TOKEN), without the gateway's admin. The gateway is --gateway, else
$CHATMCP_GATEWAY, else the one the agent's attested configuration names; it
is trusted under --gateway-policy, else $CHATMCP_POLICY.

Exit codes: 0 removed and revoked; 1 usage or network error; 3 the relay or
the gateway refused.`,
		Example: `  chatmcp chat agent remove --conversation 0f1e… --agent AGENT_ADDRESS`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if conversation == "" || agentAddr == "" {
				return &ExitError{Code: ExitUsage, Err: errors.New("--conversation and --agent are required")}
			}
			a, err := parseAddress(agentAddr)
			if err != nil {
				return err
			}
			cl, err := f.client(env)
			if err != nil {
				return err
			}
			conv, err := cl.Membership(ctx, conversation)
			if err != nil {
				return chatErr(err)
			}
			grants, err := grantsTo(ctx, cl, conversation, a)
			if err != nil {
				return chatErr(err)
			}
			// Everything the revocation needs is settled before anything
			// changes.
			var gw *gwclient.Member
			var parent string
			if len(grants) > 0 {
				if parent, err = capabilityToken(env, token); err != nil {
					return err
				}
				base := firstNonEmpty(gateway, env.getenv("CHATMCP_GATEWAY"))
				if base == "" {
					base = publishedGateway(ctx, cl, a)
				}
				if gw, err = memberGateway(env, base, gatewayPolicy, "--gateway-policy"); err != nil {
					return err
				}
			}
			switch {
			case conv.IsDM(cl.Address(), a):
				fmt.Fprintf(env.Stderr, "chatmcp: warning: %s is the other member of this direct conversation: it stays a member (its grants are revoked)\n", a)
			case conv.IsMember(a):
				if err := cl.RemoveMember(ctx, conversation, a); err != nil {
					return chatErr(err)
				}
				fmt.Fprintf(env.Stdout, "removed %s from conversation %s: later messages wrap no key for it\n", a, conversation)
			default:
				fmt.Fprintf(env.Stdout, "%s is not a member of conversation %s\n", a, conversation)
			}
			if len(grants) == 0 {
				fmt.Fprintln(env.Stdout, "no grant of yours to it in this conversation: nothing to revoke")
				return nil
			}
			for _, g := range grants {
				if err := gw.RevokeDerived(ctx, parent, g.Token); err != nil {
					if reason, _ := gwclient.ReasonOf(err); reason == gatewayapi.ReasonNotDerived || reason == gatewayapi.ReasonUnauthorized {
						return &ExitError{Code: ExitRejected, Err: fmt.Errorf("revoking the grant: %w", err), Hint: "pass the token the grant was derived from (--token)"}
					}
					return gatewayError(fmt.Errorf("revoking the grant: %w", err))
				}
				chain := "?"
				if v, err := captoken.Parse(g.Token); err == nil {
					chain = v.ChainID()
				}
				fmt.Fprintf(env.Stdout, "revoked grant %s at %s\n", chain, gw.BaseURL)
			}
			return nil
		},
	}
	c.Flags().StringVar(&conversation, "conversation", "", "conversation ID (required)")
	c.Flags().StringVar(&agentAddr, "agent", "", "the agent's wallet address (required)")
	c.Flags().StringVar(&token, "token", "", "your gateway token the grants were derived from (else $CHATMCP_TOKEN)")
	c.Flags().StringVar(&gateway, "gateway", "", "gateway URL (else $CHATMCP_GATEWAY, else the agent's configured gateway)")
	c.Flags().StringVar(&gatewayPolicy, "gateway-policy", "", "attestation policy the gateway must satisfy (else $CHATMCP_POLICY)")
	return c
}

// publishedGateway is the gateway URL the agent's published configuration
// names, or "" (read without verifying the evidence: the URL only says
// where to send the revocation; the gateway itself is verified by RA-TLS).
func publishedGateway(ctx context.Context, cl *chat.Client, a wallet.Address) string {
	u, err := cl.User(ctx, a)
	if err != nil {
		return ""
	}
	for _, d := range u.Devices {
		if ev, err := agentapi.ParseEvidence(d.Evidence); err == nil {
			return ev.Config.Gateway.URL
		}
	}
	return ""
}

// newChatAgentReceiptCmd is `chatmcp chat agent receipt`.
func newChatAgentReceiptCmd(env *Env, f *chatFlags) *cobra.Command {
	var conversation, policy string
	var asJSON bool
	c := &cobra.Command{
		Use:   "receipt --conversation ID MESSAGE_ID [--policy FILE] [--json]",
		Short: "Verify and print the receipt of an agent's reply",
		Long: `Every reply of an agent carries a receipt signed by its attested device key:
hashes of the messages it read, of each model request and response, and of
each tool call and result. This verifies the receipt against the agent's
published evidence (under --policy, else your agent policy), that it names
the configuration the evidence binds and this reply's text, and prints it,
marking each message it read that you can read too and whose hash matches.

Exit codes: 0 verified; 1 usage or network error; 2 not a reply or a
malformed receipt; 3 the signature, configuration or evidence fails.`,
		Example: `  chatmcp chat agent receipt --conversation 0f1e… 9a8b…`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if conversation == "" {
				return &ExitError{Code: ExitUsage, Err: errors.New("--conversation is required")}
			}
			cl, err := f.clientWith(env, policy)
			if err != nil {
				return err
			}
			msgs, err := cl.ReadAll(ctx, chat.ReadOptions{Conversation: conversation})
			if err != nil {
				return chatErr(err)
			}
			var reply *chat.Message
			byID := map[string]*chat.Message{}
			for i := range msgs {
				byID[msgs[i].ID] = &msgs[i]
				if msgs[i].ID == args[0] {
					reply = &msgs[i]
				}
			}
			if reply == nil || reply.Text == "" {
				return exitf(ExitUsage, "no message %s that you can read in conversation %s", args[0], conversation)
			}
			m, err := agentapi.ParseMessage(reply.Text)
			if err != nil {
				return agentErr(err)
			}
			if m.Kind != agentapi.KindReply {
				return exitf(ExitInvalid, "message %s is not an agent's reply (kind %s)", args[0], m.Kind)
			}
			r := m.Reply.Receipt
			if !r.Agent.Equal(reply.Sender) || r.Device != reply.SenderDevice || r.Conversation != conversation {
				return exitf(ExitRejected, "the receipt names agent %s device %s in conversation %s, but the reply came from %s device %s in %s",
					r.Agent, r.Device, r.Conversation, reply.Sender, reply.SenderDevice, conversation)
			}
			u, err := cl.User(ctx, reply.Sender)
			if err != nil {
				return chatErr(err)
			}
			var dev *chat.AgentDevice
			for i := range u.Devices {
				if u.Devices[i].Device == r.Device {
					if dev, err = cl.VerifyAgentDevice(ctx, &u.Devices[i], nil); err != nil {
						return agentErr(fmt.Errorf("the agent's evidence: %w", err))
					}
				}
			}
			if dev == nil {
				return exitf(ExitRejected, "agent %s publishes no device %s", r.Agent, r.Device)
			}
			if err := agentapi.VerifyReceipt(r, m.Reply.Text, &dev.Cert, dev.Evidence); err != nil {
				return agentErr(err)
			}
			if asJSON {
				return printJSONLine(env.Stdout, r)
			}
			printReceipt(env.Stdout, reply, r, dev, byID)
			return nil
		},
	}
	c.Flags().StringVar(&conversation, "conversation", "", "conversation ID (required)")
	c.Flags().StringVar(&policy, "policy", "", "attestation policy the agent's evidence must satisfy (else --agent-policy, $CHATMCP_AGENT_POLICY)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the verified receipt as JSON")
	return c
}

func printReceipt(w io.Writer, reply *chat.Message, r *agentapi.Receipt, dev *chat.AgentDevice, byID map[string]*chat.Message) {
	tee := string(dev.Claims.TEE)
	if dev.Claims.TEE == attest.Sim {
		tee += ", SIMULATED"
	}
	fmt.Fprintf(w, "receipt of %s verified: signed by agent %s device %s, whose evidence (%s) passes your policy and binds configuration %s\n",
		reply.ID, r.Agent, r.Device, tee, r.ConfigSHA256)
	fmt.Fprintf(w, "conversation %s, in reply to %s, at %s\n", r.Conversation, r.InReplyTo, time.UnixMilli(r.At).UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "read %d message(s):\n", len(r.Read))
	for _, m := range r.Read {
		note := "not readable by you"
		if mine, ok := byID[m.ID]; ok && mine.Text != "" {
			if agentapi.Sum([]byte(mine.Text)) == m.SHA256 && mine.Sender.Equal(m.Sender) {
				note = "matches the message you read"
			} else {
				note = "DIFFERS from the message you read"
			}
		}
		fmt.Fprintf(w, "  %s from %s sha256 %s (%s)\n", m.ID, m.Sender, m.SHA256, note)
	}
	fmt.Fprintf(w, "model calls: %d\n", len(r.Model))
	for i, m := range r.Model {
		fmt.Fprintf(w, "  %d. request sha256 %s, response sha256 %s\n", i+1, m.RequestSHA256, m.ResponseSHA256)
	}
	fmt.Fprintf(w, "tool calls: %d\n", len(r.Tools))
	for i, t := range r.Tools {
		approval := ""
		if t.ApprovalID != "" {
			approval = ", approval " + t.ApprovalID
		}
		fmt.Fprintf(w, "  %d. %s: %s, arguments sha256 %s, result sha256 %s%s\n", i+1, printable(t.Tool), printable(t.Outcome), t.ArgumentsSHA256, t.ResultSHA256, approval)
	}
	fmt.Fprintf(w, "reply sha256 %s\n", r.ReplySHA256)
}

// approvalRequest is an approval request found in a conversation.
type approvalRequest struct {
	ID              string    `json:"id"`
	Tool            string    `json:"tool"`
	Conversation    string    `json:"conversation"`
	RequestedBy     string    `json:"requested_by"`
	Arguments       string    `json:"arguments"`
	ArgumentsSHA256 string    `json:"arguments_sha256"`
	Gateway         string    `json:"gateway"`
	Expires         time.Time `json:"expires"`
	Message         string    `json:"message"`

	digest agentapi.Digest
}

// approvalRequests lists the approval requests waiting in the
// conversations the client can read (chat.Client.ApprovalRequests) and
// those refused because their arguments do not hash to the arguments_sha256
// a decision would sign.
func approvalRequests(ctx context.Context, cl *chat.Client, conversation string, now time.Time) ([]approvalRequest, []chat.RefusedApprovalRequest, error) {
	l, refused, err := cl.CheckedApprovalRequests(ctx, conversation, now)
	if err != nil {
		return nil, nil, err
	}
	var out []approvalRequest
	for _, r := range l {
		out = append(out, approvalRequest{ID: r.ID, Tool: r.Tool, Conversation: r.Conversation, RequestedBy: r.RequestedBy.String(),
			Arguments: r.Arguments, ArgumentsSHA256: r.ArgumentsSHA256.String(), Gateway: r.Gateway, Expires: r.Expires.UTC(), Message: r.Message,
			digest: r.ArgumentsSHA256})
	}
	return out, refused, nil
}

// newChatApprovalsCmd is `chatmcp chat approvals`.
func newChatApprovalsCmd(env *Env, f *chatFlags) *cobra.Command {
	var conversation string
	var asJSON bool
	c := &cobra.Command{
		Use:   "approvals [--conversation ID] [--json]",
		Short: "List the approval requests agents posted in your conversations",
		Long: `An agent whose call the gateway holds for approval posts an approval request
in the conversation: the tool, the call's complete arguments, and the
approval id. This lists those still waiting (not expired, not answered in
a later reply of the agent) whose arguments hash to the arguments_sha256 a
decision signs; any other is left out with a warning. Decide with
'chatmcp chat approve ID' or 'chatmcp chat deny ID': only the approver the
agent's grant names is accepted by the gateway.`,
		Example: `  chatmcp chat approvals
  chatmcp chat approvals --conversation 0f1e… --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client(env)
			if err != nil {
				return err
			}
			l, refused, err := approvalRequests(cmd.Context(), cl, conversation, env.now())
			if err != nil {
				return chatErr(err)
			}
			for _, r := range refused {
				fmt.Fprintf(env.Stderr, "chatmcp: warning: approval request %s in conversation %s left out (arguments check): %v\n", r.ID, r.Conversation, r.Err)
			}
			if asJSON {
				if l == nil {
					l = []approvalRequest{}
				}
				return printJSONLine(env.Stdout, l)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTOOL\tCONVERSATION\tREQUESTED BY\tEXPIRES IN\tARGUMENTS")
			for _, r := range l {
				args := printable(r.Arguments)
				if len([]rune(args)) > maxArgumentsShown {
					args = string([]rune(args)[:maxArgumentsShown-1]) + "…"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, printable(r.Tool), r.Conversation, r.RequestedBy, r.Expires.Sub(env.now()).Round(time.Second), args)
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&conversation, "conversation", "", "only this conversation")
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON list")
	return c
}

// newChatDenyCmd is `chatmcp chat deny`: an approval id (32 lowercase hex
// digits) is denied at the gateway (newChatDecideCmd); anything else is a
// sender address, denied by consent (the consent command given).
func newChatDenyCmd(env *Env, f *chatFlags, consent *cobra.Command) *cobra.Command {
	c := newChatDecideCmd(env, f, false)
	decide := c.RunE
	c.Use = "deny (--gateway URL --policy FILE ID | ADDRESS)"
	c.Short = "Deny a call an agent asked you to approve (ID), or a sender (ADDRESS)"
	c.Long += `
With a wallet ADDRESS instead of an approval ID, it denies that sender: ` + consent.Short + `.`
	c.Example += "\n  chatmcp chat deny SENDER_ADDRESS"
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if envelope.ValidID(args[0]) {
			return decide(cmd, args)
		}
		for _, name := range []string{"gateway", "policy", "conversation"} {
			if cmd.Flags().Changed(name) {
				return &ExitError{Code: ExitUsage, Err: fmt.Errorf("%q is not an approval id (32 lowercase hex digits); --%s is for approval ids only", args[0], name)}
			}
		}
		return consent.RunE(cmd, args)
	}
	return c
}

// newChatDecideCmd is `chatmcp chat approve` (approve) or the approval half
// of `chatmcp chat deny` (newChatDenyCmd).
func newChatDecideCmd(env *Env, f *chatFlags, approve bool) *cobra.Command {
	verb, decision := "deny", agentapi.Deny
	if approve {
		verb, decision = "approve", agentapi.Approve
	}
	var gateway, policy, conversation string
	c := &cobra.Command{
		Use:   verb + " --gateway URL --policy FILE ID",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a call an agent asked you to approve",
		Long: `Finds approval request ID in your conversations, signs a statement (the
approval id, the arguments hash the request names, "` + string(decision) + `", an expiry) with this
device's key, certified by your wallet, and delivers it to the gateway
(--gateway, else the one the request names), verified by RA-TLS under
--policy (else $CHATMCP_POLICY). The gateway accepts it only from the wallet
the agent's grant names as approver, for the arguments the held call has.

Exit codes: 0 the gateway accepted the decision; 1 usage or network error;
3 the gateway refused it (you are not the grant's approver, the call is no
longer waiting, the arguments differ …).`,
		Example: `  chatmcp chat ` + verb + ` --gateway https://127.0.0.1:8443 --policy gateway-policy.yaml 5f4e…`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id := args[0]
			cl, err := f.client(env)
			if err != nil {
				return err
			}
			l, refused, err := approvalRequests(ctx, cl, conversation, env.now())
			if err != nil {
				return chatErr(err)
			}
			var req *approvalRequest
			for i := range l {
				if l[i].ID == id {
					req = &l[i]
				}
			}
			if req == nil {
				for _, r := range refused {
					if r.ID == id {
						return &ExitError{Code: ExitInvalid, Err: fmt.Errorf("arguments check failed, nothing signed: %w", r.Err),
							Hint: "the request's arguments are not the call whose hash you would sign; ask in the conversation"}
					}
				}
				return &ExitError{Code: ExitUsage, Err: fmt.Errorf("no waiting approval request %s in your conversations", id), Hint: "list them with 'chatmcp chat approvals'"}
			}
			gw, err := memberGateway(env, firstNonEmpty(gateway, req.Gateway), policy, "--policy")
			if err != nil {
				return err
			}
			st, err := agentapi.NewApprovalStatement(cl.Device(), id, req.digest, decision, env.now().Add(statementLifetime))
			if err != nil {
				return exitf(ExitInvalid, "%w", err)
			}
			if err := gw.PostStatement(ctx, st); err != nil {
				if _, ok := gwclient.ReasonOf(err); ok {
					var he *gwclient.HTTPError
					if errors.As(err, &he) && he.Status < 500 {
						return &ExitError{Code: ExitRejected, Err: fmt.Errorf("the gateway refused your decision: %w", err)}
					}
				}
				return gatewayError(err)
			}
			done := "approved"
			if !approve {
				done = "denied"
			}
			fmt.Fprintf(env.Stdout, "%s %s (%s asked by %s in conversation %s)\n", done, id, printable(req.Tool), req.RequestedBy, req.Conversation)
			fmt.Fprintf(env.Stdout, "arguments: %s\n", printable(req.Arguments))
			return nil
		},
	}
	c.Flags().StringVar(&gateway, "gateway", "", "gateway URL (else the one the request names)")
	c.Flags().StringVar(&policy, "policy", "", "attestation policy the gateway must satisfy (else $CHATMCP_POLICY)")
	c.Flags().StringVar(&conversation, "conversation", "", "look for the request only in this conversation")
	return c
}
