package agent_test

import (
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/agent"
	"github.com/chatmcp/chatmcp/agent/agenttest"
	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/internal/tinyllm"
)

func isReply(_ chat.Message, m *agentapi.Message) bool { return m.Kind == agentapi.KindReply }

// TestTinyModelListsNotes runs the agent against the TINY TEST MODEL
// (../shared/llm): "@assistant please list my notes" in a group makes a
// tools/call under the agent's grant reach the gateway (audited under the
// grant's chain) and a reply with a verifiable receipt come back. The
// model garbles argument values and reply text, so only the call's tool
// and shape are checked. The canary message addressed to the agent goes to
// the model and never into the agent's files or logs.
func TestTinyModelListsNotes(t *testing.T) {
	e := newEnv(t, envOptions{modelURL: tinyllm.Start(t)})
	conv := e.group()
	tok := e.grant(e.alice, conv, e.alice.c.Address(), "notes_*")
	v, err := captoken.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	e.say(e.alice, conv, "@assistant please list my notes")
	r := e.reply(conv)
	if len(r.Receipt.Tools) != 1 || r.Receipt.Tools[0].Tool != "notes_list_notes" || r.Receipt.Tools[0].Outcome != agent.OutcomeOK {
		t.Fatalf("tool calls %+v, want one notes_list_notes call that succeeded", r.Receipt.Tools)
	}
	if len(r.Receipt.Model) != 2 || len(r.Receipt.Read) != 1 {
		t.Errorf("receipt has %d model calls and %d messages read, want 2 and 1", len(r.Receipt.Model), len(r.Receipt.Read))
	}
	calls := agenttest.AuditEntries(t, e.st.GatewayData, "gateway.call")
	found := false
	for _, c := range calls {
		if c["tool"] == "notes_list_notes" && c["token_chain"] == v.ChainID() && c["decision"] == "granted" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audited notes_list_notes call under the grant's chain %s in %v", v.ChainID(), calls)
	}

	canary := "canary-" + strings.Repeat("7q", 12)
	e.say(e.alice, conv, "@assistant hello "+canary)
	e.reply(conv)
	e.agent.Stop()
	t.Logf("agent log:\n%s", e.agent.Log.Bytes())
	agenttest.AssertAbsent(t, canary, e.agent.Data, e.agent.Log.Bytes())
}
