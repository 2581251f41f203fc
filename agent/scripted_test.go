package agent_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/agent"
	"github.com/chatmcp/chatmcp/agent/agenttest"
	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/gwclient"
)

// The tests in this file run the agent against a scripted OpenAI-compatible
// server (scripted, env_test.go): an honest test of the agent's logic, not
// of a model. Everything else is real: KBS, gateway with the notes
// upstream, relay, agent daemon, members' clients. They share one stack and
// one agent (starting one costs a proof-of-work stamp for the agent's first
// contact), each in its own conversations.

// scriptedLimits are the shared agent's limits.
var scriptedLimits = agentapi.Limits{ToolCallsPerTurn: 2, TurnsPerMinute: 4, ContextMessages: 3}

func TestScripted(t *testing.T) {
	s := newScripted(t, true)
	// The agent re-attests often, so every subtest also runs while its
	// evidence is being refreshed.
	e := newEnv(t, envOptions{modelURL: s.url(), modelAttested: true, limits: scriptedLimits, refreshEvery: 300 * time.Millisecond})
	for _, c := range []struct {
		name string
		fn   func(*testing.T, *scripted, *env)
	}{
		{"AttestedModel", testAttestedModel},
		{"SeveralToolCallsInOneTurn", testSeveralToolCallsInOneTurn},
		{"ToolCallLimit", testToolCallLimit},
		{"ModelErrorsBecomeReplies", testModelErrorsBecomeReplies},
		{"TurnsPerMinute", testTurnsPerMinute},
		{"NotAddressedNotAnswered", testNotAddressedNotAnswered},
		{"GrantOnlyFromItsApprover", testGrantOnlyFromItsApprover},
		{"WriteWaitsForApproval", testWriteWaitsForApproval},
		{"RevokedGrant", testRevokedGrant},
		{"EvidenceRefreshed", testEvidenceRefreshed},
		{"DirectConversation", testDirectConversation},
		{"ContextMessagesAndMaxTokens", testContext},
		{"CanaryNotLogged", testCanaryNotLogged},
		{"RestartKeepsGrantsAndAnswersOnce", testRestart}, // last: it replaces the agent
	} {
		t.Run(c.name, func(t *testing.T) {
			s.reset()
			c.fn(t, s, e.with(t))
		})
	}
}

// testSeveralToolCallsInOneTurn: one model answer with two tool calls runs
// both through the gateway, feeds both results back, and the receipt
// lists both calls and both model exchanges.
func testSeveralToolCallsInOneTurn(t *testing.T, s *scripted, e *env) {
	conv := e.group("notes_*")
	s.queue(ok(completion("", [][2]string{{"notes_list_notes", `{}`}, {"notes_read_note", `{"name":"welcome"}`}})), ok(completion("You have notes.", nil)))
	e.say(e.alice, conv, "@assistant list and read my notes")
	r := e.reply(conv)
	if r.Text != "You have notes." {
		t.Errorf("reply %q", r.Text)
	}
	if len(r.Receipt.Tools) != 2 || r.Receipt.Tools[0].Tool != "notes_list_notes" || r.Receipt.Tools[1].Tool != "notes_read_note" {
		t.Fatalf("receipt tools %+v", r.Receipt.Tools)
	}
	for _, tc := range r.Receipt.Tools {
		if tc.ResultSHA256.IsZero() || tc.Outcome == agent.OutcomeRefused || tc.Outcome == agent.OutcomeLimit {
			t.Errorf("call %+v was not made", tc)
		}
	}
	reqs := s.requests()
	if len(reqs) != 2 || len(r.Receipt.Model) != 2 {
		t.Fatalf("%d model requests, %d in the receipt; want 2", len(reqs), len(r.Receipt.Model))
	}
	second := reqs[1].Messages
	if n := len(second); n < 3 || second[n-1].Role != "tool" || second[n-2].Role != "tool" || second[n-3].Role != "assistant" {
		t.Errorf("second request does not end with the assistant's calls and two tool results: %+v", second)
	}
	var offered []string
	for _, td := range reqs[0].Tools {
		offered = append(offered, td.Function.Name)
	}
	if strings.Join(offered, ",") != "notes_list_notes,notes_read_note,notes_write_note" {
		t.Errorf("offered tools %v", offered)
	}
	// The prompt never carries the grant's token.
	for _, m := range reqs[0].Messages {
		if m.Content != nil && strings.Contains(*m.Content, e.aliceToken[:20]) {
			t.Error("the prompt carries the capability token")
		}
	}
}

// testToolCallLimit: with tool_calls_per_turn 2, a model asking for three
// calls gets two; the third is recorded as not called, the turn stops
// without another model call, and the reply says why.
func testToolCallLimit(t *testing.T, s *scripted, e *env) {
	conv := e.group("notes_*")
	s.queue(ok(completion("", [][2]string{{"notes_list_notes", `{}`}, {"notes_list_notes", `{}`}, {"notes_list_notes", `{}`}})))
	e.say(e.alice, conv, "@assistant list my notes three times")
	r := e.reply(conv)
	var outcomes []string
	for _, tc := range r.Receipt.Tools {
		outcomes = append(outcomes, tc.Outcome)
	}
	if strings.Join(outcomes, ",") != "ok,ok,limit" {
		t.Errorf("outcomes %v, want ok,ok,limit", outcomes)
	}
	if !strings.Contains(r.Text, "at most 2 tool calls") {
		t.Errorf("reply %q does not say the limit", r.Text)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("%d model requests, want 1", n)
	}
}

// testModelErrorsBecomeReplies: an HTTP error, a malformed body and a
// tool call without a name each become a short reply; the agent keeps
// answering afterwards.
func testModelErrorsBecomeReplies(t *testing.T, s *scripted, e *env) {
	conv := e.group()
	for _, c := range []struct {
		rep  scriptedReply
		want string
	}{
		{scriptedReply{500, `{"error":{"message":"overloaded"}}`}, "HTTP 500: overloaded"},
		{ok(`{"choices": [`), "malformed answer"},
		{ok(`{"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"1","function":{"name":""}}]}}]}`), "tool call without a valid name"},
		{ok(completion("pong", nil)), "pong"},
	} {
		s.queue(c.rep)
		e.say(e.alice, conv, "@assistant ping")

		if r := e.reply(conv); !strings.Contains(r.Text, c.want) {
			t.Errorf("reply %q, want it to contain %q", r.Text, c.want)
		}
	}
}

// testTurnsPerMinute: over turns_per_minute the agent says so once and
// does not call the model.
func testTurnsPerMinute(t *testing.T, s *scripted, e *env) {
	conv := e.group()
	for i := range scriptedLimits.TurnsPerMinute {
		s.queue(ok(completion("answer", nil)))
		e.say(e.alice, conv, "@assistant question")
		if r := e.reply(conv); r.Text != "answer" {
			t.Fatalf("turn %d: reply %q", i, r.Text)
		}
	}
	e.say(e.alice, conv, "@assistant one too many")
	r := e.reply(conv)
	if !strings.Contains(r.Text, "at most 4 messages a minute") || len(r.Receipt.Model) != 0 {
		t.Errorf("over the limit: reply %q with %d model calls", r.Text, len(r.Receipt.Model))
	}
	if n := len(s.requests()); n != scriptedLimits.TurnsPerMinute {
		t.Errorf("%d model requests, want %d", n, scriptedLimits.TurnsPerMinute)
	}
}

// testNotAddressedNotAnswered: in a group the agent answers only @name;
// it reads the rest as context.
func testNotAddressedNotAnswered(t *testing.T, s *scripted, e *env) {
	conv := e.group()
	e.say(e.bob, conv, "lunch at noon? (assistant@example is not a mention)")
	s.queue(ok(completion("noted", nil)))
	e.say(e.alice, conv, "@Assistant what did bob say?")
	r := e.reply(conv)
	if len(r.Receipt.Read) != 2 {
		t.Errorf("read %d messages, want bob's and alice's", len(r.Receipt.Read))
	}
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model requests, want 1 (bob's message is context, not a question)", len(reqs))
	}
	last := reqs[0].Messages[len(reqs[0].Messages)-1]
	if last.Content == nil || *last.Content != "what did bob say?" {
		t.Errorf("last prompt message %v: the mention should be stripped", last.Content)
	}
}

// testGrantOnlyFromItsApprover: a grant sent by bob that names alice as
// approver is ignored (it would let bob hand the agent a token whose writes
// alice approves); the agent then offers no tools.
func testGrantOnlyFromItsApprover(t *testing.T, s *scripted, e *env) {
	conv := e.group()
	e.grant(e.bob, conv, e.alice.c.Address(), "notes_*")
	s.queue(ok(completion("no tools", nil)))
	e.say(e.alice, conv, "@assistant list my notes")
	e.reply(conv)
	if reqs := s.requests(); len(reqs) != 1 || len(reqs[0].Tools) != 0 {
		t.Fatalf("tools offered under a grant from someone other than its approver: %+v", reqs)
	}
}

// testWriteWaitsForApproval: a write the model asks for (as prompt
// injection could make it) is held by the gateway; the agent posts an
// approval request naming the gateway's approval id and the held call's
// arguments hash; bob's signed approval is refused (he is not the grant's
// approver); alice's denial means the upstream never receives the write,
// her approval lets it through. Meanwhile another conversation is
// answered: one conversation's wait blocks no other.
func testWriteWaitsForApproval(t *testing.T, s *scripted, e *env) {
	conv := e.group("notes_*")
	other := e.group()

	for _, approve := range []bool{false, true} {
		name := map[bool]string{false: "denied-note", true: "approved-note"}[approve]
		args := `{"name":"` + name + `","text":"buy milk"}`
		s.queue(ok(completion("", [][2]string{{"notes_write_note", args}})))
		e.say(e.alice, conv, "@assistant write a note called "+name+" saying buy milk")
		_, m := e.alice.next(t, conv, func(_ chat.Message, m *agentapi.Message) bool { return m.Kind == agentapi.KindApprovalRequest })
		req := m.ApprovalRequest
		held, err := e.st.Admin.Approvals(t.Context())
		if err != nil || len(held) != 1 {
			t.Fatalf("pending approvals %v, %v", held, err)
		}
		wantSum, _ := agentapi.ArgumentsSHA256([]byte(args))
		if req.Arguments != args {
			t.Errorf("approval request shows arguments %q, want the canonical %q", req.Arguments, args)
		}
		if err := req.VerifyArguments(); err != nil {
			t.Errorf("the agent's own approval request fails the arguments check: %v", err)
		}
		if req.ID != held[0].ID || req.Tool != "notes_write_note" || req.ArgumentsSHA256 != wantSum || req.ArgumentsSHA256.String() != held[0].ArgumentsSHA256 || !req.RequestedBy.Equal(e.agent.Address) {
			t.Fatalf("approval request %+v does not match the held call %+v", req, held[0])
		}
		if !approve {
			// While the call waits, the other conversation is answered.
			s.queue(ok(completion("still here", nil)))
			e.say(e.alice, other, "@assistant are you there?")
			if r := e.reply(other); r.Text != "still here" {
				t.Errorf("other conversation: %q", r.Text)
			}
		}
		s.queue(ok(completion("done", nil)))
		// bob is a member but not the grant's approver: refused.
		gm := e.gwMember()
		exp := time.Now().Add(time.Minute)
		bobSt, err := agentapi.NewApprovalStatement(e.bob.c.Device(), req.ID, req.ArgumentsSHA256, agentapi.Approve, exp)
		if err != nil {
			t.Fatal(err)
		}
		if err := gm.PostStatement(t.Context(), bobSt); !gwclient.IsReason(err, gatewayapi.ReasonNotApprover) {
			t.Fatalf("bob's statement: %v, want %q", err, gatewayapi.ReasonNotApprover)
		}
		decision := map[bool]agentapi.Decision{false: agentapi.Deny, true: agentapi.Approve}[approve]
		st, err := agentapi.NewApprovalStatement(e.alice.c.Device(), req.ID, req.ArgumentsSHA256, decision, exp)
		if err != nil {
			t.Fatal(err)
		}
		if err := gm.PostStatement(t.Context(), st); err != nil {
			t.Fatalf("alice's statement: %v", err)
		}
		r := e.reply(conv)
		tc := r.Receipt.Tools
		if len(tc) != 1 || tc[0].ApprovalID != req.ID {
			t.Fatalf("receipt tools %+v", tc)
		}
		want := map[bool]string{false: agent.OutcomeError, true: agent.OutcomeOK}[approve]
		if tc[0].Outcome != want {
			t.Errorf("approve=%v: outcome %q, want %q", approve, tc[0].Outcome, want)
		}
		res := e.callAsAlice("notes_read_note", map[string]any{"name": name})
		if approve == res.IsError {
			t.Errorf("approve=%v: the note exists = %v", approve, !res.IsError)
		}
	}
}

// testRevokedGrant: once alice revokes the grant's token (derived from her
// own, without the admin), the agent's tool calls stop reaching the
// upstream; it answers without them and says why.
func testRevokedGrant(t *testing.T, s *scripted, e *env) {
	conv := e.group()
	tok := e.grant(e.alice, conv, e.alice.c.Address(), "notes_*")
	s.queue(ok(completion("", [][2]string{{"notes_list_notes", `{}`}})), ok(completion("listed", nil)))
	e.say(e.alice, conv, "@assistant list my notes")
	if r := e.reply(conv); len(r.Receipt.Tools) != 1 || r.Receipt.Tools[0].Outcome != agent.OutcomeOK {
		t.Fatalf("before revocation: %+v", r.Receipt.Tools)
	}
	if err := e.gwMember().RevokeDerived(t.Context(), e.aliceToken, tok); err != nil {
		t.Fatal(err)
	}
	s.queue(ok(completion("", [][2]string{{"notes_list_notes", `{}`}})), ok(completion("listed", nil)))
	e.say(e.alice, conv, "@assistant list my notes again")
	r := e.reply(conv)
	if len(r.Receipt.Tools) != 1 || r.Receipt.Tools[0].Outcome == agent.OutcomeOK {
		t.Fatalf("after revocation the call succeeded: %+v", r.Receipt.Tools)
	}
	// The next turn opens no session: no tools, and the reply says why.
	s.queue(ok(completion("without tools", nil)))
	e.say(e.alice, conv, "@assistant and now?")
	r = e.reply(conv)
	if !strings.Contains(r.Text, "No tools this time") {
		t.Errorf("reply %q does not say the tools are gone", r.Text)
	}
	if reqs := s.requests(); len(reqs[len(reqs)-1].Tools) != 0 {
		t.Error("tools offered under a revoked grant")
	}
}

// testAttestedModel: the scripted endpoint serves RA-TLS and the agent's
// configuration names the policy it must satisfy; the evidence members
// verify says so (attested, the policy's hash), and turns go through.
func testAttestedModel(t *testing.T, s *scripted, e *env) {
	devs, err := e.alice.c.InspectAgent(t.Context(), e.agent.Address, e.policy())
	if err != nil || len(devs) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	pol, err := os.ReadFile(e.st.PolicyFile)
	if err != nil {
		t.Fatal(err)
	}
	if m := devs[0].Evidence.Config.Model; !m.Attested || m.PolicySHA256 != agentapi.Sum(pol) || !strings.HasPrefix(m.URL, "https://") {
		t.Errorf("attested configuration of the model: %+v", m)
	}
	conv := e.group()
	s.queue(ok(completion("over RA-TLS", nil)))
	e.say(e.alice, conv, "@assistant hi")
	if r := e.reply(conv); r.Text != "over RA-TLS" {
		t.Errorf("reply %q", r.Text)
	}
}

// testRestart: a restarted agent (same data directory, wallet from the KBS,
// fresh evidence) rebuilds its context and grants from the conversation in
// memory, does not answer again what it answered before, and answers what
// is new with the tools its grant allows.
func testRestart(t *testing.T, s *scripted, e *env) {
	conv := e.group("notes_*")
	s.queue(ok(completion("first", nil)))
	e.say(e.alice, conv, "@assistant first question")
	e.reply(conv)
	e.agent.Stop()
	e.agent = agenttest.Start(t, e.agentOpts)
	s.queue(ok(completion("", [][2]string{{"notes_list_notes", `{}`}})), ok(completion("second", nil)))
	id := e.say(e.alice, conv, "@assistant second question")
	r := e.reply(conv)
	if r.Receipt.InReplyTo != id || r.Text != "second" {
		t.Fatalf("after the restart the agent answered %s with %q, want %s", r.Receipt.InReplyTo, r.Text, id)
	}
	if len(r.Receipt.Read) != 3 || len(r.Receipt.Tools) != 1 || r.Receipt.Tools[0].Outcome != agent.OutcomeOK {
		t.Errorf("after the restart: read %d messages (want 3: both questions and its first reply), tools %+v", len(r.Receipt.Read), r.Receipt.Tools)
	}
}

// testEvidenceRefreshed: the agent re-attests and publishes fresh evidence
// (members' policies may bound its age) for the same device and
// configuration, which still verifies.
func testEvidenceRefreshed(t *testing.T, s *scripted, e *env) {
	first, err := e.alice.c.InspectAgent(t.Context(), e.agent.Address, e.policy())
	if err != nil || len(first) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		devs, err := e.alice.c.InspectAgent(t.Context(), e.agent.Address, e.policy())
		if err != nil || len(devs) != 1 {
			t.Fatalf("inspect while refreshing: %v", err)
		}
		if !bytes.Equal(devs[0].Evidence.Evidence.Report, first[0].Evidence.Evidence.Report) {
			if devs[0].Cert.Device != first[0].Cert.Device || devs[0].Evidence.Config.Digest() != first[0].Evidence.Config.Digest() {
				t.Fatal("refreshed evidence is for another device or configuration")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the evidence was not refreshed within 20 s")
		}
		time.Sleep(100 * time.Millisecond) // polling the relay's directory: nothing signals a refresh to a member
	}
}

// testDirectConversation: in a direct conversation every message is for
// the agent, no @name needed, and it answers in that conversation.
func testDirectConversation(t *testing.T, s *scripted, e *env) {
	s.queue(ok(completion("hello alice", nil)))
	sent, err := e.alice.c.SendDM(t.Context(), e.agent.Address, "hi there")
	if err != nil {
		t.Fatal(err)
	}
	r := e.reply(sent.Conversation)
	if r.Text != "hello alice" || r.Receipt.InReplyTo != sent.ID {
		t.Fatalf("reply %q to %s", r.Text, r.Receipt.InReplyTo)
	}
	if reqs := s.requests(); len(reqs) != 1 || len(reqs[0].Tools) != 0 {
		t.Errorf("model requests %d (tools offered without a grant: %v)", len(reqs), len(reqs) > 0 && len(reqs[0].Tools) > 0)
	}
}

// testCanaryNotLogged: plaintext that reaches the agent's error paths — a
// malformed structured message, a tool name and arguments the model made
// up from the conversation — never reaches its logs or files.
func testCanaryNotLogged(t *testing.T, s *scripted, e *env) {
	canary := "canary-" + strings.Repeat("k3", 12)
	conv := e.group("notes_*")
	if _, err := e.alice.c.Send(t.Context(), conv, agentapi.MessagePrefix+`{"kind":"text","`+canary+`":1}`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		calls [][2]string
		want  string
	}{
		{[][2]string{{canary, `{}`}, {"notes_read_note", `{"name":"` + canary + `","name":"dup"}`}}, "refused,refused"}, // not offered; duplicate key
		{[][2]string{{"notes_read_note", `{"name":"` + canary + `"}`}}, "error"},                                        // made: the gateway and upstream see it; no such note
	} {
		s.queue(ok(completion("", c.calls)), ok(completion("done", nil)))
		e.say(e.alice, conv, "@assistant read the note "+canary)
		r := e.reply(conv)
		var outcomes []string
		for _, tc := range r.Receipt.Tools {
			outcomes = append(outcomes, tc.Outcome)
		}
		if strings.Join(outcomes, ",") != c.want {
			t.Errorf("outcomes %v, want %s", outcomes, c.want)
		}
	}
	agenttest.AssertAbsent(t, canary, e.agent.Data, e.agent.Log.Bytes())
}

// testContext: the prompt holds the system prompt and the last
// context_messages readable messages, and asks for max_tokens.
func testContext(t *testing.T, s *scripted, e *env) {
	conv := e.group()
	for _, m := range []string{"one", "two", "three", "four"} {
		e.say(e.bob, conv, m)
	}
	s.queue(ok(completion("ok", nil)))
	e.say(e.alice, conv, "@assistant five")
	r := e.reply(conv)
	if len(r.Receipt.Read) != scriptedLimits.ContextMessages {
		t.Errorf("read %d messages, want %d", len(r.Receipt.Read), scriptedLimits.ContextMessages)
	}
	req := s.requests()[0]
	var got []string
	for _, m := range req.Messages {
		got = append(got, m.Role+":"+*m.Content)
	}
	if len(got) != 4 || !strings.HasPrefix(got[0], "system:") || strings.Join(got[1:], ",") != "user:three,user:four,user:five" {
		t.Errorf("prompt %q", got)
	}
	if req.MaxTokens != agent.DefaultLimits.MaxTokens {
		t.Errorf("max_tokens %d, want %d", req.MaxTokens, agent.DefaultLimits.MaxTokens)
	}
}
