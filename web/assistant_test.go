package web_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/agent/agenttest"
	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/gwtest"
	"github.com/chatmcp/chatmcp/internal/tinyllm"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/web"
)

// TestBrowserAssistant invites a real chatmcp-agent (agenttest, on the TINY
// TEST MODEL of ../shared/llm, the INSECURE simulated TEE) into a group from
// the page, shows its verified claims, approves the write it asks for from
// the page (a statement signed by alice's device, accepted by the gateway
// and the note written), and removes it, its grant revoked at the gateway.
// The tiny model garbles argument values: the test checks which tool was
// called, never values.
func TestBrowserAssistant(t *testing.T) {
	exec := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	agentKey, agentWallet := agenttest.NewWallet(t)
	dir := t.TempDir()
	st, err := devstack.Start(ctx, &devstack.Options{Dir: filepath.Join(dir, "stack"), Secrets: map[string][]byte{"agent-wallet": agentWallet},
		ApprovalTimeout: 90 * time.Second, StampBits: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	model := tinyllm.Start(t)
	ag := agenttest.Start(t, &agenttest.Options{Dir: filepath.Join(dir, "agent"), Relay: st.RelayURL, KBS: st.KBSURL, WalletSecret: "agent-wallet",
		ModelURL: model, GatewayURL: st.GatewayURL, GatewayPolicy: st.PolicyFile, ApprovalWait: 90 * time.Second})
	if !ag.Address.Equal(agentKey.Address()) {
		t.Fatalf("the agent signed in as %s, not its KBS wallet", ag.Address)
	}
	m, err := st.Admin.Mint(ctx, gwclient.MintRequest{Tools: []string{"notes_list_notes", "notes_write_note"}, TTL: "1h", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := attest.LoadPolicy(st.PolicyFile) // accepts this process's SIMULATED measurement
	if err != nil {
		t.Fatal(err)
	}
	alice, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// bob signs in once so that a group can include him.
	bob, _ := wallet.Generate(rand.Reader)
	bc, err := chat.New(&chat.Options{Relay: st.RelayURL, Wallet: bob, Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	launch, _ := startWeb(t, &web.Options{Relay: st.RelayURL, Home: filepath.Join(dir, "alice-home"), Wallet: alice,
		PolicyFile: st.PolicyFile, AgentPolicy: pol, Token: m.Token})

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exec), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(420, 860))...)
	defer cancelAlloc()
	a, cancelA := chromedp.NewContext(alloc)
	defer cancelA()

	do(t, a, "alice opens her link and makes a group with bob", chromedp.Navigate(launch), chromedp.WaitVisible(chromedp.ID("members")),
		chromedp.SendKeys(chromedp.ID("members"), bob.Address().String()), chromedp.Click(chromedp.ID("group-create")),
		chromedp.WaitVisible(chromedp.ID("agent-address")))
	group := evalJS[string](t, a, `document.getElementById('messages').dataset.conversation`)
	do(t, a, "alice invites the assistant", chromedp.SendKeys(chromedp.ID("agent-address"), ag.Address.String()),
		chromedp.Click(chromedp.ID("invite")), chromedp.WaitVisible(chromedp.CSS(".agent")))
	for _, want := range []string{"verified: your agent policy accepts", "SIMULATED", model, "not attested", "@assistant", st.GatewayURL, "notes_*"} {
		waitJS(t, a, "the assistant's claims", `document.querySelector('.assistant').textContent.includes(`+jsString(want)+`)`)
	}
	waitJS(t, a, "the grant message", hasTextContaining(".grant", "notes_*"))

	do(t, a, "alice asks for a write", chromedp.SendKeys(chromedp.ID("text"), "@assistant write a note called todo saying buy milk"),
		chromedp.Click(chromedp.ID("send")), chromedp.WaitVisible(chromedp.ID("messages")))
	waitJSLong(t, a, "the approval request with its buttons", `!!document.querySelector('.approval button.approve')`)
	if tool := evalJS[string](t, a, `document.querySelector('.approval code').textContent`); tool != "notes_write_note" {
		t.Fatalf("the approval request names %q, want notes_write_note", tool)
	}
	if shots := os.Getenv("CHATMCP_WEB_SCREENSHOTS"); shots != "" {
		png, err := chromedp.Run(a, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(shots, "assistant.png"), png, 0o644)
	}
	do(t, a, "alice approves from the page", chromedp.Click(chromedp.CSS(".approval button.approve")))
	waitJSLong(t, a, "the assistant's reply naming the write", `!!document.getElementById('error') || `+hasTextContaining(".tools", "notes_write_note (ok)"))
	if n := evalJS[float64](t, a, `document.querySelectorAll('#error').length`); n != 0 {
		t.Fatalf("approving failed: %s", evalJS[string](t, a, `document.getElementById('error').textContent`))
	}

	// A second write, denied from the page: the upstream never receives
	// it (the notebook lists the same notes) and the assistant reports
	// the call as failed.
	before := listNotes(t, ctx, st, m.Token)
	do(t, a, "alice asks for a second write", chromedp.SendKeys(chromedp.ID("text"), "@assistant write a note called secret saying nothing"),
		chromedp.Click(chromedp.ID("send")), chromedp.WaitVisible(chromedp.ID("messages")))
	waitJSLong(t, a, "the second approval request", `!!document.querySelector('.approval button.deny')`)
	do(t, a, "alice denies from the page", chromedp.Click(chromedp.CSS(".approval button.deny")))
	waitJSLong(t, a, "the assistant's reply naming the failed write", `!!document.getElementById('error') || `+hasTextContaining(".tools", "notes_write_note (error)"))
	if n := evalJS[float64](t, a, `document.querySelectorAll('#error').length`); n != 0 {
		t.Fatalf("denying failed: %s", evalJS[string](t, a, `document.getElementById('error').textContent`))
	}
	if after := listNotes(t, ctx, st, m.Token); after != before {
		t.Fatalf("the denied write reached the upstream: notes were %q, now %q", before, after)
	}

	do(t, a, "alice removes the assistant", chromedp.Click(chromedp.ID("remove-agent")))
	waitJSLong(t, a, "the assistant is gone", `!!document.getElementById('error') || (!document.querySelector('.agent') && document.querySelectorAll('#members li').length === 2)`)
	if n := evalJS[float64](t, a, `document.querySelectorAll('#error').length`); n != 0 {
		t.Fatalf("removing failed: %s", evalJS[string](t, a, `document.getElementById('error').textContent`))
	}
	// The grant is revoked at the gateway: the agent's token is refused.
	grants, err := func() ([]string, error) {
		ac, err := chat.New(&chat.Options{Relay: st.RelayURL, Wallet: alice, Home: filepath.Join(dir, "alice-home")})
		if err != nil {
			return nil, err
		}
		gs, err := ac.GrantsTo(ctx, group, ag.Address)
		var out []string
		for _, g := range gs {
			out = append(out, g.Token)
		}
		return out, err
	}()
	if err != nil || len(grants) != 1 {
		t.Fatalf("alice's grants to the agent: %v, %v", grants, err)
	}
	if _, err := connectMCP(ctx, st, grants[0]); err == nil {
		t.Fatal("the gateway still accepts the removed assistant's grant")
	}
}

// connectMCP opens an MCP session at the stack's gateway with token.
func connectMCP(ctx context.Context, st *devstack.Stack, token string) (*mcp.ClientSession, error) {
	hc := gwtest.Client(token, st.Admin.HTTP.Transport)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "web-test"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: st.GatewayURL + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err == nil {
		cs.Close()
	}
	return cs, err
}

// listNotes returns what the stack's notes upstream lists, through the
// gateway with token.
func listNotes(t *testing.T, ctx context.Context, st *devstack.Stack, token string) string {
	t.Helper()
	hc := gwtest.Client(token, st.Admin.HTTP.Transport)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "web-test"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: st.GatewayURL + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes_list_notes", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("listing notes: %v %+v", err, res)
	}
	var out string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			out += tc.Text
		}
	}
	return out
}

func jsString(s string) string {
	b := []byte{'"'}
	for _, r := range s {
		switch r {
		case '"', '\\':
			b = append(b, '\\', byte(r))
		default:
			b = append(b, string(r)...)
		}
	}
	return string(append(b, '"'))
}

func hasTextContaining(sel, text string) string {
	return `[...document.querySelectorAll(` + jsString(sel) + `)].some((e) => e.textContent.includes(` + jsString(text) + `))`
}

// waitJSLong is waitJS for steps that wait on the tiny model, across the
// reloads that an approval request's live update makes.
func waitJSLong(t *testing.T, ctx context.Context, step, cond string) {
	t.Helper()
	deadline := time.Now().Add(100 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		if ok, err = chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(5*time.Second))); err == nil && ok {
			return
		}
	}
	html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
	t.Fatalf("%s: waiting for %s: %v\npage: %s", step, cond, err, html)
}
