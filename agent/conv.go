package agent

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/wallet"
)

// conv is one conversation's state, owned by its worker goroutine, in
// memory only.
type conv struct {
	id          string
	queue       chan chat.Message
	replayUntil int64 // messages up to this seq were handled before a restart

	kind    string
	peer    wallet.Address // a direct conversation's other member
	history []entry        // readable messages, oldest first, at most ContextMessages
	grant   *agentapi.Grant
	session *ToolSession
	tools   []ToolDef
	turns   []time.Time // start times of the turns of the last minute
	noticed time.Time   // when the agent last said it is over its limit
	// payNotes are this turn's refused payments, each naming its rule:
	// the reply says them whatever the model makes of the tool result.
	payNotes []string
}

// entry is one readable message.
type entry struct {
	id     string
	sender wallet.Address
	text   string // plaintext, in memory only
	self   bool
	sum    agentapi.Digest // SHA-256 of the whole plaintext
}

func (a *Agent) work(ctx context.Context, c *conv) {
	defer func() {
		if c.session != nil {
			c.session.Close()
		}
	}()
	for m := range c.queue {
		a.handle(ctx, c, m)
	}
}

// handle records m and answers it when the agent is addressed. A panic in
// a turn is turned into a short reply and a log line: one conversation's
// failure never ends the agent.
func (a *Agent) handle(ctx context.Context, c *conv, m chat.Message) {
	defer func() {
		if r := recover(); r != nil {
			a.o.Logger.Error("turn failed", "conversation", c.id, "id", m.ID, "panic", fmt.Sprint(r))
			a.reply(ctx, c, entry{id: m.ID, sender: m.Sender}, "Sorry, something went wrong on my side.", &agentapi.Receipt{})
		}
	}()
	if m.Err != "" || m.Kind == "" {
		return // not for this device (sealed before it joined, or after it left) or not verifiable
	}
	if c.kind == "" {
		c.kind = m.Kind
	}
	self := m.Sender.Equal(a.self)
	if c.kind == envelope.KindDM && !self {
		c.peer = m.Sender
	}
	msg, err := agentapi.ParseMessage(m.Text)
	if err != nil {
		// Only the check: a decoder's message may quote the plaintext.
		check, _ := agentapi.CheckOf(err)
		a.o.Logger.Info("ignoring a malformed structured message", "conversation", c.id, "id", m.ID, "check", string(check))
		return
	}
	e := entry{id: m.ID, sender: m.Sender, self: self, sum: agentapi.Sum([]byte(m.Text))}
	switch msg.Kind {
	case agentapi.KindGrant:
		a.takeGrant(ctx, c, m, msg.Grant)
		return
	case agentapi.KindApprovalRequest:
		return // the conversation's bookkeeping, not context for the model
	case agentapi.KindReply:
		e.text = msg.Reply.Text
	case agentapi.KindText:
		e.text = msg.Text
	}
	c.history = append(c.history, e)
	if n := a.o.Config.Limits.ContextMessages; len(c.history) > n {
		c.history = append([]entry(nil), c.history[len(c.history)-n:]...)
	}
	if self || msg.Kind != agentapi.KindText || m.Seq <= c.replayUntil {
		return
	}
	if c.kind != envelope.KindDM && !a.mention.MatchString(msg.Text) {
		return
	}
	a.turn(ctx, c, e)
	a.handled(c.id, m.Seq)
}

// takeGrant accepts a grant only from the approver it names, for this
// agent, in this conversation, unexpired; a later grant replaces an
// earlier one. The token stays in memory. The agent then allows the
// conversation's members (consent): its inviter vouched for them, so their
// messages to it need no proof-of-work stamp.
func (a *Agent) takeGrant(ctx context.Context, c *conv, m chat.Message, g *agentapi.Grant) {
	why := ""
	switch {
	case !g.Approver.Equal(m.Sender):
		why = "sent by someone other than its approver"
	case !g.Agent.Equal(a.self):
		why = "for another agent"
	case g.Conversation != c.id:
		why = "for another conversation"
	case !a.o.Now().Before(g.Expires):
		why = "expired"
	}
	if why != "" {
		a.o.Logger.Info("grant ignored", "conversation", c.id, "id", m.ID, "why", why)
		return
	}
	if c.session != nil {
		c.session.Close()
		c.session, c.tools = nil, nil
	}
	c.grant = g
	if m.Seq > c.replayUntil {
		a.allowMembers(ctx, c)
	}
	a.o.Logger.Info("grant accepted", "conversation", c.id, "approver", g.Approver.String(), "tools", len(g.Tools), "expires", g.Expires)
}

func (a *Agent) allowMembers(ctx context.Context, c *conv) {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	st, err := a.o.Writer.Membership(ctx, c.id)
	if err != nil {
		a.o.Logger.Warn("reading the members to allow them failed", "conversation", c.id, "err", err)
		return
	}
	for _, mem := range st.Members {
		if mem.Equal(a.self) {
			continue
		}
		if err := a.o.Writer.Allow(ctx, mem); err != nil {
			a.o.Logger.Warn("allowing a member failed", "conversation", c.id, "member", mem.String(), "err", err)
		}
	}
}

// allowed reports whether the grant permits tool: by the token's own
// caveats when it parses, else by the grant's patterns.
func allowed(g *agentapi.Grant, tool string) bool {
	if v, err := captoken.Parse(g.Token); err == nil {
		if !v.Allows(tool) {
			return false
		}
	}
	for _, p := range g.Tools {
		if ok, _ := path.Match(p, tool); ok {
			return true
		}
	}
	return false
}

// toolSession returns the conversation's tool session and offered tools,
// opening it under the grant when needed. No grant, or an expired one,
// means no tools.
func (a *Agent) toolSession(ctx context.Context, c *conv) (*ToolSession, []ToolDef, error) {
	if c.grant == nil || a.o.Gateway == nil {
		return nil, nil, nil
	}
	if !a.o.Now().Before(c.grant.Expires) {
		return nil, nil, fmt.Errorf("my grant in this conversation expired at %s", c.grant.Expires.UTC().Format(time.RFC3339))
	}
	if c.session != nil {
		return c.session, c.tools, nil
	}
	s, err := a.o.Gateway.Open(ctx, c.grant.Token)
	if err != nil {
		return nil, nil, err
	}
	list, err := s.Tools(ctx)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	var defs []ToolDef
	for _, t := range list {
		if !allowed(c.grant, t.Name) {
			continue
		}
		params, _ := wireMarshal(t.InputSchema)
		defs = append(defs, ToolDef{Type: "function", Function: FunctionDef{Name: t.Name, Description: truncate(t.Description, 1024), Parameters: params}})
	}
	c.session, c.tools = s, defs
	return s, defs, nil
}

func (a *Agent) dropSession(c *conv) {
	if c.session != nil {
		c.session.Close()
		c.session, c.tools = nil, nil
	}
}

// stripMention removes the agent's @name from text.
func (a *Agent) stripMention(text string) string {
	return strings.TrimSpace(a.mention.ReplaceAllString(text, "$1"))
}
