package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// optInUpstream adds upstream "opt", the same test server with
// caller_elicitation_approves: true.
func optInUpstream(u *testUpstream) string {
	return fmt.Sprintf(`  opt:
    url: %s
    headers:
      Authorization: {secret: up-token, format: "Bearer {}"}
    caller_elicitation_approves: true
`, u.http.URL)
}

// selfApprover is a client that answers every elicitation form by
// approving, as an agent that wants its own write through would.
type selfApprover struct {
	mu       sync.Mutex
	messages []string
	answered chan struct{} // closed at the first answer
	once     sync.Once
}

func newSelfApprover() *selfApprover { return &selfApprover{answered: make(chan struct{})} }

func (a *selfApprover) options() *mcp.ClientOptions {
	return &mcp.ClientOptions{ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		a.mu.Lock()
		a.messages = append(a.messages, req.Params.Message)
		a.mu.Unlock()
		a.once.Do(func() { close(a.answered) })
		return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}, nil
	}}
}

func (a *selfApprover) lastMessage() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.messages) == 0 {
		return ""
	}
	return a.messages[len(a.messages)-1]
}

// TestCallerCannotApproveItsOwnCall replays issue 8 #2: a token holder
// whose client answers the gateway's elicitation form with "approve" must
// not get its destructive call through. The form tells it where the call
// waits (approval id, chatmcp approvals approve); only the admin API
// decides.
func TestCallerCannotApproveItsOwnCall(t *testing.T) {
	t.Run("self-approval is ignored and the call times out", func(t *testing.T) {
		h := newHarness(t, hopts{timeout: time.Second})
		agent := newSelfApprover()
		cs := h.mustConnect(h.mint("agent", "up_write").Token, agent.options())
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_write", Arguments: map[string]any{"text": "rm -rf"}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.IsError || !strings.Contains(callText(res), "not approved (timed out)") {
			t.Fatalf("result %q, want not approved (timed out)", callText(res))
		}
		if got := h.up.called(); len(got) != 0 {
			t.Fatalf("the caller approved its own call: upstream saw %v", got)
		}
		msg := agent.lastMessage()
		if !strings.Contains(msg, "chatmcp approvals approve ") || !strings.Contains(msg, "up_write") {
			t.Fatalf("elicitation message %q does not say how the call is approved", msg)
		}
	})
	t.Run("the admin still approves after the caller answered", func(t *testing.T) {
		h := newHarness(t, hopts{timeout: 10 * time.Second})
		agent := newSelfApprover()
		cs := h.mustConnect(h.mint("agent", "up_write").Token, agent.options())
		done := make(chan *mcp.CallToolResult, 1)
		go func() {
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_write", Arguments: map[string]any{"text": "x"}})
			if err != nil {
				res = &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}
			}
			done <- res
		}()
		select {
		case <-agent.answered:
		case <-time.After(10 * time.Second):
			t.Fatal("the gateway sent no elicitation")
		}
		a := waitApproval(t, h)
		if !strings.Contains(agent.lastMessage(), a["id"].(string)) {
			t.Fatalf("elicitation message %q lacks the approval id %s", agent.lastMessage(), a["id"])
		}
		if code := h.admin("POST", "/admin/v1/approvals/"+a["id"].(string)+"/approve", nil, nil); code != 204 {
			t.Fatalf("admin approve: %d (the caller's answer decided the call?)", code)
		}
		if res := <-done; res.IsError || callText(res) != "wrote x" {
			t.Fatalf("result %q", callText(res))
		}
	})
}

// TestElicitationApproval: with caller_elicitation_approves: true on the
// upstream (an operator's opt-in), the caller's answer decides.
func TestElicitationApproval(t *testing.T) {
	for _, accept := range []bool{true, false} {
		t.Run(fmt.Sprint("accept=", accept), func(t *testing.T) {
			h := newHarness(t, hopts{timeout: 10 * time.Second, upstream: optInUpstream})
			var asked []string
			var mu sync.Mutex
			cs := h.mustConnect(h.mint("alice", "opt_write").Token, &mcp.ClientOptions{
				ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					mu.Lock()
					asked = append(asked, req.Params.Message)
					mu.Unlock()
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"approve": accept}}, nil
				},
			})
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "opt_write", Arguments: map[string]any{"text": "x"}})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(asked) != 1 || !strings.Contains(asked[0], "opt_write") {
				t.Fatalf("elicited %q", asked)
			}
			if res.IsError == accept || (len(h.up.called()) > 0) != accept {
				t.Fatalf("accept=%v: result %q, upstream calls %v", accept, callText(res), h.up.called())
			}
			if accept && !strings.Contains(callText(res), "wrote x") {
				t.Fatalf("result %q", callText(res))
			}
		})
	}
}

// progressRecorder is a client that records the progress notifications it
// receives.
type progressRecorder struct {
	mu    sync.Mutex
	got   []*mcp.ProgressNotificationParams
	first chan struct{} // closed at the second notification
	once  sync.Once
}

func (r *progressRecorder) options() *mcp.ClientOptions {
	r.first = make(chan struct{})
	return &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, req.Params)
		if len(r.got) >= 2 {
			r.once.Do(func() { close(r.first) })
		}
	}}
}

func (r *progressRecorder) notifications() []*mcp.ProgressNotificationParams {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*mcp.ProgressNotificationParams(nil), r.got...)
}

// TestApprovalWaitSendsProgress: a client that sent a progress token hears
// "waiting for approval ID" while its call is held, so that a client whose
// request timeout is shorter than approval_timeout but restarts on progress
// keeps waiting; a client that sent none hears nothing.
func TestApprovalWaitSendsProgress(t *testing.T) {
	h := newHarness(t, hopts{timeout: 10 * time.Second, progressEvery: 20 * time.Millisecond})
	tok := h.mint("alice", "up_write").Token

	t.Run("with a progress token", func(t *testing.T) {
		rec := &progressRecorder{}
		cs := h.mustConnect(tok, rec.options())
		done := make(chan *mcp.CallToolResult, 1)
		go func() {
			p := &mcp.CallToolParams{Name: "up_write", Arguments: map[string]any{"text": "x"}}
			p.SetProgressToken("client-token-1")
			res, err := cs.CallTool(context.Background(), p)
			if err != nil {
				res = &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}
			}
			done <- res
		}()
		a := waitApproval(t, h)
		select {
		case <-rec.first:
		case <-time.After(10 * time.Second):
			t.Fatal("no progress notifications while the call waits")
		}
		if code := h.admin("POST", "/admin/v1/approvals/"+a["id"].(string)+"/approve", nil, nil); code != 204 {
			t.Fatalf("approve: %d", code)
		}
		if res := <-done; res.IsError || callText(res) != "wrote x" {
			t.Fatalf("result %q", callText(res))
		}
		got := rec.notifications()
		last := 0.0
		for _, n := range got {
			if n.ProgressToken != "client-token-1" || n.Message != "waiting for approval "+a["id"].(string) || n.Progress <= last || n.Total != 10 {
				t.Fatalf("notification %+v (previous progress %v)", n, last)
			}
			last = n.Progress
		}
	})
	t.Run("without a progress token", func(t *testing.T) {
		rec := &progressRecorder{}
		cs := h.mustConnect(tok, rec.options())
		done := make(chan struct{})
		go func() {
			defer close(done)
			cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "up_write", Arguments: map[string]any{"text": "y"}})
		}()
		a := waitApproval(t, h)
		time.Sleep(100 * time.Millisecond) // five intervals
		h.admin("POST", "/admin/v1/approvals/"+a["id"].(string)+"/approve", nil, nil)
		<-done
		if got := rec.notifications(); len(got) != 0 {
			t.Fatalf("progress without a token: %+v", got[0])
		}
	})
}
