package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/envelope"
)

// MaxToolResult caps the text of a tool result fed back to the model.
const MaxToolResult = 16 << 10

// Tool call outcomes in receipts.
const (
	OutcomeOK      = "ok"
	OutcomeError   = "error"   // the gateway or the tool reported an error (a refusal, a denial)
	OutcomeRefused = "refused" // the agent did not call it: not offered, or malformed arguments
	OutcomeLimit   = "limit"   // over tool_calls_per_turn: not called
)

// allowTurn applies turns_per_minute to the conversation.
func (a *Agent) allowTurn(c *conv, now time.Time) bool {
	cut := now.Add(-time.Minute)
	i := 0
	for i < len(c.turns) && !c.turns[i].After(cut) {
		i++
	}
	c.turns = c.turns[i:]
	if len(c.turns) >= a.o.Config.Limits.TurnsPerMinute {
		return false
	}
	c.turns = append(c.turns, now)
	return true
}

// turn answers trigger: prompt from the context, model calls, tool calls
// through the gateway, one signed reply. Every failure becomes a short
// reply.
func (a *Agent) turn(ctx context.Context, c *conv, trigger entry) {
	start := a.o.Now()
	lim := a.o.Config.Limits
	r := &agentapi.Receipt{}
	if !a.allowTurn(c, start) {
		if start.Sub(c.noticed) < time.Minute {
			a.o.Logger.Info("turn over the limit; not answered", "conversation", c.id, "id", trigger.id)
			return
		}
		c.noticed = start
		r.Read = []agentapi.ReadMessage{{ID: trigger.id, Sender: trigger.sender, SHA256: trigger.sum}}
		a.reply(ctx, c, trigger, fmt.Sprintf("I answer at most %d messages a minute in a conversation; please ask again shortly.", lim.TurnsPerMinute), r)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, a.o.TurnTimeout)
	defer cancel()

	msgs := []ChatMessage{{Role: "system", Content: ptr(a.o.Config.SystemPrompt)}}
	for _, e := range c.history {
		r.Read = append(r.Read, agentapi.ReadMessage{ID: e.id, Sender: e.sender, SHA256: e.sum})
		if e.self {
			msgs = append(msgs, ChatMessage{Role: "assistant", Content: ptr(e.text)})
		} else {
			msgs = append(msgs, ChatMessage{Role: "user", Content: ptr(a.stripMention(e.text))})
		}
	}
	session, tools, toolErr := a.toolSession(ctx, c)
	var notes []string
	if toolErr != nil {
		a.o.Logger.Warn("no tools this turn", "conversation", c.id, "err", toolErr)
		notes = append(notes, "(No tools this time: "+toolNote(toolErr)+".)")
	}
	offered := map[string]bool{}
	for _, t := range tools {
		offered[t.Function.Name] = true
	}
	calls, text := 0, ""
	for round := 0; ; round++ {
		ex, err := a.o.Model.Complete(ctx, &ChatRequest{Messages: msgs, Tools: tools, MaxTokens: lim.MaxTokens})
		if err != nil {
			var me *ModelError
			if errors.As(err, &me) {
				text = "Sorry, I could not get an answer from my model (" + me.Msg + ")."
				a.o.Logger.Warn("model call failed", "conversation", c.id, "status", me.Status)
			} else {
				text = "Sorry, I could not get an answer from my model."
				a.o.Logger.Warn("model call failed", "conversation", c.id)
			}
			break
		}
		r.Model = append(r.Model, agentapi.ModelCall{RequestSHA256: agentapi.Sum(ex.Request), ResponseSHA256: agentapi.Sum(ex.Response)})
		reply := ex.Reply
		if reply.Content != nil {
			text = *reply.Content
		}
		if len(reply.ToolCalls) == 0 {
			break
		}
		msgs = append(msgs, reply)
		stopped := false
		for _, tc := range reply.ToolCalls {
			var result string
			var rec agentapi.ToolCall
			if calls >= lim.ToolCallsPerTurn {
				result, rec = "not called: this turn reached its limit of tool calls", agentapi.ToolCall{Tool: tc.Function.Name, Outcome: OutcomeLimit}
				stopped = true
			} else {
				calls++
				result, rec = a.callTool(ctx, c, session, offered, tc)
			}
			rec.ArgumentsSHA256, _ = agentapi.ArgumentsSHA256([]byte(tc.Function.Arguments))
			r.Tools = append(r.Tools, rec)
			msgs = append(msgs, ChatMessage{Role: "tool", ToolCallID: tc.ID, Content: ptr(result)})
		}
		if stopped || round >= lim.ToolCallsPerTurn {
			notes = append(notes, fmt.Sprintf("(I stopped: a turn may make at most %d tool calls.)", lim.ToolCallsPerTurn))
			break
		}
	}
	text = strings.TrimSpace(text)
	if text == "" {
		text = "(no answer)"
	}
	notes, c.payNotes = append(notes, c.payNotes...), nil
	if len(notes) > 0 {
		text += "\n" + strings.Join(notes, "\n")
	}
	a.reply(ctx, c, trigger, text, r)
	a.o.Logger.Info("turn done", "conversation", c.id, "id", trigger.id, "model_calls", len(r.Model), "tool_calls", len(r.Tools), "ms", a.o.Now().Sub(start).Milliseconds())
}

func toolNote(err error) string {
	if strings.Contains(err.Error(), "expired") {
		return "my grant here has expired"
	}
	return "the gateway did not accept my grant or could not be reached"
}

// callTool runs one of the model's tool calls through the gateway and
// returns the text fed back to the model and the receipt's record.
func (a *Agent) callTool(ctx context.Context, c *conv, s *ToolSession, offered map[string]bool, tc ToolCall) (string, agentapi.ToolCall) {
	rec := agentapi.ToolCall{Tool: tc.Function.Name}
	if s == nil || !offered[tc.Function.Name] {
		rec.Outcome = OutcomeRefused
		return fmt.Sprintf("error: tool %q is not available", truncate(tc.Function.Name, 100)), rec
	}
	raw := json.RawMessage(tc.Function.Arguments)
	if strings.TrimSpace(tc.Function.Arguments) == "" {
		raw = json.RawMessage("{}")
	}
	canon, err := agentapi.CanonicalArguments(raw)
	argsSum := agentapi.Sum(canon)
	if err != nil {
		rec.Outcome = OutcomeRefused
		return "error: the arguments must be one JSON object", rec
	}
	res, err := a.callPaying(ctx, c, s, tc.Function.Name, raw, &rec, func(h HeldCall) {
		rec.ApprovalID = h.ID
		// The complete canonical arguments, not the gateway's redacted
		// text: the approver's client checks that they hash to argsSum and
		// shows them, so the person reads what they sign. Arguments over
		// agentapi.MaxArguments make no valid request: the call waits
		// unapproved until the gateway's hold expires.
		a.requestApproval(ctx, c, &agentapi.ApprovalRequest{ID: h.ID, Gateway: a.o.Config.Gateway.URL, Tool: tc.Function.Name,
			Arguments: string(canon), ArgumentsSHA256: argsSum, RequestedBy: a.self, Expires: a.o.Now().Add(a.o.ApprovalWait).UTC()})
	})
	if err != nil {
		a.dropSession(c)
		rec.Outcome = OutcomeError
		// Not the error's text: a JSON-RPC error may quote the arguments.
		a.o.Logger.Warn("tool call failed; the session is dropped", "conversation", c.id, "tool", tc.Function.Name)
		return "error: the gateway call failed", rec
	}
	out, _ := json.Marshal(res)
	rec.ResultSHA256 = agentapi.Sum(out)
	rec.Outcome = OutcomeOK
	if res.IsError {
		rec.Outcome = OutcomeError
	}
	var parts []string
	for _, ct := range res.Content {
		if t, ok := ct.(*mcp.TextContent); ok {
			parts = append(parts, t.Text)
		}
	}
	text := truncate(strings.Join(parts, "\n"), MaxToolResult)
	if res.IsError {
		text = "error: " + text
	}
	return text, rec
}

// requestApproval posts an approval request into the conversation: the
// approver decides with `chatmcp chat approve|deny`.
func (a *Agent) requestApproval(ctx context.Context, c *conv, req *agentapi.ApprovalRequest) {
	pt, err := agentapi.Encode(&agentapi.Message{Kind: agentapi.KindApprovalRequest, ApprovalRequest: req})
	if err == nil {
		err = a.post(ctx, c, pt)
	}
	if err != nil {
		a.o.Logger.Error("posting an approval request failed", "conversation", c.id, "approval", req.ID, "err", err)
		return
	}
	a.o.Logger.Info("approval requested", "conversation", c.id, "approval", req.ID, "tool", req.Tool)
}

// reply signs r and posts text with it.
func (a *Agent) reply(ctx context.Context, c *conv, trigger entry, text string, r *agentapi.Receipt) {
	text = truncate(text, agentapi.MaxReplyText-8)
	r.Version, r.ConfigSHA256, r.Conversation, r.InReplyTo = agentapi.ReceiptVersion, a.digest, c.id, trigger.id
	r.At, r.ReplySHA256 = a.o.Now().UnixMilli(), agentapi.Sum([]byte(text))
	if len(r.Read) > agentapi.MaxReceiptItems {
		r.Read = r.Read[len(r.Read)-agentapi.MaxReceiptItems:]
	}
	r.Sign(a.device)
	pt, err := agentapi.Encode(&agentapi.Message{Kind: agentapi.KindReply, Reply: &agentapi.Reply{Text: text, Receipt: r}})
	if err == nil {
		err = a.post(ctx, c, pt)
	}
	if err != nil {
		a.o.Logger.Error("posting a reply failed", "conversation", c.id, "in_reply_to", trigger.id, "err", err)
	}
}

// post sends plaintext to the conversation through the writer client.
func (a *Agent) post(ctx context.Context, c *conv, pt string) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	var err error
	if c.kind == envelope.KindDM && !c.peer.IsZero() {
		_, err = a.o.Writer.SendDM(ctx, c.peer, pt)
	} else {
		_, err = a.o.Writer.Send(ctx, c.id, pt)
	}
	return err
}

func ptr(s string) *string { return &s }
