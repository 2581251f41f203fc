package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/ratls"
	"github.com/chatmcp/chatmcp/wallet"
)

// The assistant in a conversation (docs/agent.md), the same steps as
// `chatmcp chat agent add|remove` and `chatmcp chat approve|deny`, through
// package chat, agentapi and gwclient: verify the agent's evidence, add it
// with a grant derived from your token, show what it runs, approve or deny
// the writes it asks for (a statement signed by this device), remove it
// and revoke its grants.

// statementLifetime is how long an approval statement counts, as for
// `chatmcp chat approve`.
const statementLifetime = 5 * time.Minute

// defaultGrantTTL is the lifetime of a grant when the form names none.
const defaultGrantTTL = time.Hour

// agentDevice is one agent device in plain words.
type agentDevice struct {
	Device        string
	Verified      bool
	Check         string // the failed check's word when not Verified
	Problem       string
	TEE           string
	Simulated     bool
	Measurement   string
	Debug         bool
	ConfigSHA256  string
	Name          string
	ModelURL      string
	Model         string
	ModelAttested bool
	Gateway       string
	SystemPrompt  string
	Limits        agentapi.Limits
}

type grantView struct {
	Tools   string
	Expires time.Time
	Chain   string
}

// agentMember is a member that publishes agent evidence.
type agentMember struct {
	Address  string
	Verified bool
	Devices  []agentDevice
	Grants   []grantView
	DM       bool
}

type agentView struct {
	Agents    []agentMember
	CanInvite bool // a group the user created
	NeedToken bool // no --token: the form asks for one
	NoPolicy  bool // no agent policy: no agent gets keys
}

// verified reports whether a is a member whose agent evidence passes the
// policy.
func (v *agentView) verified(a string) bool {
	for _, am := range v.Agents {
		if am.Address == a && am.Verified {
			return true
		}
	}
	return false
}

// agentSection is the conversation page's assistant section.
func (s *Server) agentSection(ctx context.Context, u *user, id string) *agentView {
	v := &agentView{NeedToken: s.opts.Token == "", NoPolicy: s.opts.AgentPolicy == nil}
	u.client(func(c *chat.Client) error {
		st, err := c.Membership(ctx, id)
		if err != nil {
			return err
		}
		v.CanInvite = st.Kind == envelope.KindGroup && st.Creator.Equal(c.Address())
		for _, m := range st.Members {
			if m.Equal(c.Address()) {
				continue
			}
			if am := s.describeAgent(ctx, c, m); am != nil {
				am.DM = st.Kind == envelope.KindDM
				if gs, err := c.GrantsTo(ctx, id, m); err == nil {
					for _, g := range gs {
						gv := grantView{Tools: strings.Join(g.Tools, ", "), Expires: g.Expires}
						if p, err := captoken.Parse(g.Token); err == nil {
							gv.Chain = p.ChainID()
						}
						am.Grants = append(am.Grants, gv)
					}
				}
				v.Agents = append(v.Agents, *am)
			}
		}
		return nil
	})
	return v
}

// describeAgent verifies a's devices under the agent policy and puts each
// in words; it returns nil when a publishes no evidence (a person).
func (s *Server) describeAgent(ctx context.Context, c *chat.Client, a wallet.Address) *agentMember {
	ur, err := c.User(ctx, a)
	if err != nil {
		return nil
	}
	am := &agentMember{Address: a.String(), Verified: true}
	for i := range ur.Devices {
		cert := &ur.Devices[i]
		if !cert.HasEvidence() {
			continue
		}
		d := agentDevice{Device: cert.Device}
		ev, err := agentapi.ParseEvidence(cert.Evidence)
		if err == nil {
			cfg := ev.Config
			d.ConfigSHA256, d.Name, d.ModelURL, d.Model, d.ModelAttested = cfg.Digest().String(), cfg.Name, cfg.Model.URL, cfg.Model.Model, cfg.Model.Attested
			d.Gateway, d.SystemPrompt, d.Limits = cfg.Gateway.URL, cfg.SystemPrompt, cfg.Limits
			d.TEE, d.Simulated = string(ev.Evidence.TEE), ev.Evidence.TEE == attest.Sim
		}
		if dev, err := c.VerifyAgentDevice(ctx, cert, nil); err != nil {
			d.Problem = err.Error()
			if ck, ok := attest.CheckOf(err); ok {
				d.Check = string(ck)
			} else if ck, ok := agentapi.CheckOf(err); ok {
				d.Check = string(ck)
			}
			am.Verified = false
		} else {
			d.Verified = true
			d.TEE, d.Simulated = string(dev.Claims.TEE), dev.Claims.Insecure || dev.Claims.TEE == attest.Sim
			d.Measurement, d.Debug = dev.Claims.Measurement.String(), dev.Claims.Debug
		}
		am.Devices = append(am.Devices, d)
	}
	if len(am.Devices) == 0 {
		return nil
	}
	return am
}

// structured is what a message page shows of an agentapi message.
type structured struct {
	Kind     string
	Grant    *agentapi.Grant
	Approval *agentapi.ApprovalRequest
	Pending  bool
	// Unverified marks a request from a sender whose agent evidence does
	// not pass the policy: never offered for a decision.
	Unverified bool
	Reply      string
	Tools      []agentapi.ToolCall
}

// decorate parses m's text as an agentapi message; plain text stays as it
// is. A structured message counts only from its verified sender: a grant
// from the approver it names, a request from the agent that asks.
func decorate(v *msgView, m chat.Message) {
	if m.Text == "" || !strings.HasPrefix(m.Text, agentapi.MessagePrefix) {
		return
	}
	pm, err := agentapi.ParseMessage(m.Text)
	if err != nil {
		v.State, v.Problem = "rejected", "A malformed assistant message: "+err.Error()
		return
	}
	st := &structured{Kind: string(pm.Kind)}
	switch pm.Kind {
	case agentapi.KindGrant:
		if !pm.Grant.Approver.Equal(m.Sender) {
			v.State, v.Problem = "rejected", "A grant that names another approver than its sender: ignored."
			return
		}
		st.Grant = pm.Grant
	case agentapi.KindApprovalRequest:
		if !pm.ApprovalRequest.RequestedBy.Equal(m.Sender) {
			v.State, v.Problem = "rejected", "An approval request sent by someone else than the agent it names: ignored."
			return
		}
		if err := pm.ApprovalRequest.VerifyArguments(); err != nil {
			v.State, v.Problem = "rejected", "An approval request whose arguments are not the call a decision would sign: ignored. "+err.Error()
			return
		}
		st.Approval = pm.ApprovalRequest
	case agentapi.KindReply:
		st.Reply = pm.Reply.Text
		if pm.Reply.Receipt != nil {
			st.Tools = pm.Reply.Receipt.Tools
		}
	default:
		v.Text = pm.Text
		return
	}
	v.Agent = st
}

// liveText is the one line a live update shows of a structured message.
func liveText(text string) (kind, line string) {
	if !strings.HasPrefix(text, agentapi.MessagePrefix) {
		return "", text
	}
	pm, err := agentapi.ParseMessage(text)
	if err != nil {
		return "", "(a malformed assistant message)"
	}
	switch pm.Kind {
	case agentapi.KindGrant:
		return string(pm.Kind), fmt.Sprintf("Grant to %s: tools %s until %s", pm.Grant.Agent, strings.Join(pm.Grant.Tools, ", "), pm.Grant.Expires.UTC().Format(time.RFC3339))
	case agentapi.KindApprovalRequest:
		if pm.ApprovalRequest.VerifyArguments() != nil {
			return "", "(an approval request whose arguments do not match its hash: ignored)"
		}
		return string(pm.Kind), fmt.Sprintf("Asks to call %s with %s: approve or deny it on this page", pm.ApprovalRequest.Tool, pm.ApprovalRequest.Arguments)
	case agentapi.KindReply:
		return string(pm.Kind), pm.Reply.Text
	}
	return "", pm.Text
}

// routeAgent serves a conversation's assistant actions.
func (s *Server) routeAgent(w http.ResponseWriter, r *http.Request, sess *session, u *user, id, action string) {
	if r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	var err error
	switch action {
	case "agent/add":
		err = s.addAgent(r, u, id)
	case "agent/remove":
		err = s.removeAgent(r, u, id)
	case "approvals/approve", "approvals/deny":
		err = s.decide(r, u, id, action == "approvals/approve")
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.conversation(w, r, sess, u, id, err.Error())
		return
	}
	http.Redirect(w, r, "/c/"+id, http.StatusSeeOther)
}

func (s *Server) token(r *http.Request) (string, error) {
	t := strings.TrimSpace(s.opts.Token)
	if t == "" {
		t = strings.TrimSpace(r.PostFormValue("token"))
	}
	if t == "" {
		return "", errors.New("no gateway token: enter your own token (from 'chatmcp token mint'), or start chatmcp web with --token")
	}
	if _, err := captoken.Parse(t); err != nil {
		return "", fmt.Errorf("your gateway token: %w", err)
	}
	return t, nil
}

func parseToolPatterns(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil || len(p) > captoken.MaxStringLen {
			return nil, fmt.Errorf("invalid tool pattern %q", p)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("name the tools the assistant may call, e.g. notes_*")
	}
	return out, nil
}

// addAgent verifies the agent, adds it and sends it a grant, as `chatmcp
// chat agent add` does; when the evidence fails the policy nothing
// changes.
func (s *Server) addAgent(r *http.Request, u *user, id string) error {
	ctx := r.Context()
	a, err := wallet.ParseAddress(strings.TrimSpace(r.PostFormValue("agent")))
	if err != nil {
		return fmt.Errorf("the assistant's address: %w", err)
	}
	tools, err := parseToolPatterns(r.PostFormValue("tools"))
	if err != nil {
		return err
	}
	ttl := defaultGrantTTL
	if t := strings.TrimSpace(r.PostFormValue("ttl")); t != "" {
		if ttl, err = time.ParseDuration(t); err != nil || ttl <= 0 {
			return fmt.Errorf("lifetime %q is not a positive duration like 1h", t)
		}
	}
	parent, err := s.token(r)
	if err != nil {
		return err
	}
	return u.client(func(c *chat.Client) error {
		if s.opts.AgentPolicy == nil {
			return errors.New("no agent policy is configured (chatmcp web --agent-policy FILE): no assistant can be verified, so none is added")
		}
		if _, err := c.InspectAgent(ctx, a, nil); err != nil {
			return fmt.Errorf("assistant %s not added: %w", a, err)
		}
		grant, exp, err := chat.DeriveGrant(parent, tools, s.opts.Now().Add(ttl), c.Address(), a)
		if err != nil {
			return err
		}
		conv, err := c.Membership(ctx, id)
		if err != nil {
			return err
		}
		dm := conv.IsDM(c.Address(), a)
		if !conv.IsMember(a) {
			if err := c.AddMember(ctx, id, a); err != nil {
				return err
			}
		}
		text, err := agentapi.Encode(&agentapi.Message{Kind: agentapi.KindGrant, Grant: &agentapi.Grant{
			Token: grant, Approver: c.Address(), Agent: a, Tools: tools, Expires: exp, Conversation: id}})
		if err != nil {
			return err
		}
		var sent *chat.Sent
		if dm {
			sent, err = c.SendDM(ctx, a, text)
		} else {
			sent, err = c.Send(ctx, id, text)
		}
		if err != nil {
			return fmt.Errorf("sending the grant: %w", err)
		}
		for _, wh := range sent.Withheld {
			if wh.Wallet.Equal(a) {
				return fmt.Errorf("the grant was not encrypted for %s: %s", a, wh.Reason)
			}
		}
		return nil
	})
}

// memberGateway is a client of the gateway's member endpoints, trusted by
// RA-TLS under the configured policy.
func (s *Server) memberGateway(base string) (*gwclient.Member, error) {
	if u, err := url.Parse(base); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("gateway %q is not an https:// URL", base)
	}
	if s.opts.PolicyFile == "" {
		return nil, errors.New("no attestation policy for the gateway: start chatmcp web with --policy FILE")
	}
	pol, err := attest.LoadPolicy(s.opts.PolicyFile)
	if err != nil {
		return nil, err
	}
	v := ratls.NewVerifier(verifiers.New(nil), pol, &ratls.VerifierOptions{Now: s.opts.Now})
	cfg, err := (&gwclient.Trust{Verifier: v}).TLSConfig()
	if err != nil {
		return nil, err
	}
	return &gwclient.Member{BaseURL: base, HTTP: &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}}, nil
}

// decide signs an approval statement with this device and delivers it to
// the gateway the request names, as `chatmcp chat approve|deny` does.
func (s *Server) decide(r *http.Request, u *user, id string, approve bool) error {
	ctx := r.Context()
	approval := r.PostFormValue("approval")
	decision := agentapi.Deny
	if approve {
		decision = agentapi.Approve
	}
	return u.client(func(c *chat.Client) error {
		l, err := c.ApprovalRequests(ctx, id, s.opts.Now())
		if err != nil {
			return err
		}
		var req *chat.ApprovalRequest
		for i := range l {
			if l[i].ID == approval {
				req = &l[i]
			}
		}
		if req == nil {
			return fmt.Errorf("no waiting approval request %s in this conversation (decided, answered or expired)", approval)
		}
		if am := s.describeAgent(ctx, c, req.RequestedBy); am == nil || !am.Verified {
			return fmt.Errorf("approval request %s comes from %s, whose agent evidence your policy does not accept: not decided", approval, req.RequestedBy)
		}
		gw, err := s.memberGateway(req.Gateway)
		if err != nil {
			return err
		}
		st, err := agentapi.NewApprovalStatement(c.Device(), req.ID, req.ArgumentsSHA256, decision, s.opts.Now().Add(statementLifetime))
		if err != nil {
			return err
		}
		if err := gw.PostStatement(ctx, st); err != nil {
			return fmt.Errorf("the gateway refused your decision: %w", err)
		}
		return nil
	})
}

// removeAgent removes the agent from the group and revokes at the gateway
// every grant this user sent it here, as `chatmcp chat agent remove` does.
func (s *Server) removeAgent(r *http.Request, u *user, id string) error {
	ctx := r.Context()
	a, err := wallet.ParseAddress(strings.TrimSpace(r.PostFormValue("agent")))
	if err != nil {
		return fmt.Errorf("the assistant's address: %w", err)
	}
	return u.client(func(c *chat.Client) error {
		conv, err := c.Membership(ctx, id)
		if err != nil {
			return err
		}
		grants, err := c.GrantsTo(ctx, id, a)
		if err != nil {
			return err
		}
		// Everything the revocation needs is settled before anything changes.
		var gw *gwclient.Member
		var parent string
		if len(grants) > 0 {
			if parent, err = s.token(r); err != nil {
				return err
			}
			base := ""
			if am := s.describeAgent(ctx, c, a); am != nil && len(am.Devices) > 0 {
				base = am.Devices[0].Gateway
			}
			if gw, err = s.memberGateway(base); err != nil {
				return err
			}
		}
		if !conv.IsDM(c.Address(), a) && conv.IsMember(a) {
			if err := c.RemoveMember(ctx, id, a); err != nil {
				return err
			}
		}
		for _, g := range grants {
			if err := gw.RevokeDerived(ctx, parent, g.Token); err != nil {
				return fmt.Errorf("revoking the grant: %w", err)
			}
		}
		return nil
	})
}
