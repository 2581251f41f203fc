package agent_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/agent"
	"github.com/chatmcp/chatmcp/agent/agenttest"
	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/facilitator"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/svmtest"
	"github.com/chatmcp/chatmcp/kbsclient"
	"github.com/chatmcp/chatmcp/ratls"
	"github.com/chatmcp/chatmcp/signer/daemon/daemontest"
	"github.com/chatmcp/chatmcp/signer/signertest"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/x402"
)

// TestPaidTools: the agent pays for paid tools. Everything is real on
// loopback: litesvm (the TEST runtime) with a test USDC mint, a
// facilitator settling on it, the gateway (devstack) pricing two tools of
// an upstream, chatmcp-signer (--dev, the INSECURE simulated TEE) holding
// the agent's paying key from the KBS and answering over RA-TLS, and the
// agent daemon with a pay block; only the model is the scripted
// OpenAI-compatible server (env_test.go), NOT a model. The agent pays a
// cheap call once (balances move once, the receipt names the
// transaction); a call above the signer's approve_above waits until the
// token's approver (alice, the grant's inviter) signs a statement, which
// the signer takes only from her (bob's is refused); a call over the
// token's budget is refused naming the rule, and the upstream never sees
// it.
func TestPaidTools(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	const quotePrice, reportPrice, budget = 30_000, 900_000, 940_000

	// The chain and the facilitator.
	svm := svmtest.Start(t)
	mint, mintAuth := svm.NewMint(t, 6)
	payKey, payer := signertest.NewKeypair(t)
	payTo, _ := svmtest.NewKey(t)
	src := svm.CreateATA(t, payer, mint)
	dst := svm.CreateATA(t, payTo, mint)
	svm.MintTo(t, mint, mintAuth, src, 2_000_000)
	_, fp := svmtest.NewKey(t)
	svm.Fund(t, svmtest.PublicKey(fp), 1_000_000_000)
	fac, err := facilitator.New(ctx, storetest.SQLite(t), &facilitator.Options{Network: x402.SolanaLocal, RPC: svm.RPC, FeePayer: facilitator.LocalKey{Key: fp}})
	if err != nil {
		t.Fatal(err)
	}
	fln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fsrv := &http.Server{Handler: fac.Handler()}
	go fsrv.Serve(fln)
	t.Cleanup(func() { fsrv.Close() })

	// The paid upstream counts the calls it sees.
	up := &countingUpstream{calls: map[string]int{}}
	upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up.server() }, nil))
	t.Cleanup(upSrv.Close)
	price := func(tool string, amount int) string {
		return fmt.Sprintf("    - tools: %s\n      price: {amount: \"%d\", asset: %s, pay_to: %s, network: %q}\n", tool, amount, mint, payTo, x402.SolanaLocal)
	}

	// KBS, gateway, relay; the agent's wallet and the signer's key.
	agentWallet, walletJSON := agenttest.NewWallet(t)
	dir := t.TempDir()
	st, err := devstack.Start(ctx, &devstack.Options{Dir: filepath.Join(dir, "stack"), StampBits: 8, ApprovalTimeout: 30 * time.Second,
		Secrets:       map[string][]byte{"agent-wallet": walletJSON, "pay-key": payKey.MarshalKeypair()},
		Upstreams:     fmt.Sprintf("paid:\n  url: %q\n  prices:\n%s%s", upSrv.URL, price("quote", quotePrice), price("report", reportPrice)),
		GatewayConfig: fmt.Sprintf("facilitator: {url: \"http://%s\"}\n", fln.Addr())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	e := &env{t: t, st: st}
	policy := e.policy()
	e.alice = newMember(t, ctx, st.RelayURL, policy)
	e.bob = newMember(t, ctx, st.RelayURL, policy)

	// The signer, and its token for the agent: a budget, alice as the
	// approver, the agent as the holder; a KBS secret like the wallet.
	sd := daemontest.Start(t, st.KBSURL, "pay-key", fmt.Sprintf(`programs: [TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA, ComputeBudget111111111111111111111111111111, MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr]
mints: [%s]
recipients: [%s]
max_per_tx: 1000000
max_compute_unit_price: 5000000
window: {period: 24h, max: 3000000}
approve_above: 500000`, mint, payTo))
	signerURL := sd.URL
	raTLS := &http.Client{Transport: &http.Transport{TLSClientConfig: ratls.ClientConfig(ratls.NewVerifier(verifiers.New(nil), policy, nil))}}
	admin := &signerclient.Admin{Client: signerclient.Client{BaseURL: signerURL, Token: sd.AdminToken(t), HTTP: raTLS}}
	minted, err := admin.Mint(ctx, signerapi.MintRequest{Budget: fmt.Sprintf("%d/24h", budget), TTL: "1h", Subject: "assistant"})
	if err != nil {
		t.Fatal(err)
	}
	payTok, err := captoken.Attenuate(minted.Token, captoken.Caveat{Approver: e.alice.c.Address().String(), Holder: agentWallet.Address().String()})
	if err != nil {
		t.Fatal(err)
	}
	kbsTok, err := os.ReadFile(filepath.Join(dir, "stack", "kbs", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	policyText, _ := os.ReadFile(st.PolicyFile)
	if _, err := (&kbsclient.AdminClient{BaseURL: st.KBSURL, Token: strings.TrimSpace(string(kbsTok))}).Put(ctx, "signer-token", []byte(payTok), string(policyText)); err != nil {
		t.Fatal(err)
	}

	// The agent, on the scripted model server.
	s := newScripted(t, false)
	e.agentOpts = &agenttest.Options{Dir: filepath.Join(dir, "agent"), Relay: st.RelayURL, KBS: st.KBSURL, WalletSecret: "agent-wallet",
		ModelURL: s.url(), GatewayURL: st.GatewayURL, GatewayPolicy: st.PolicyFile, ApprovalWait: 30 * time.Second,
		Pay: &agenttest.Pay{Signer: signerURL, Policy: st.PolicyFile, TokenSecret: "signer-token", RPC: svm.URL, Network: x402.SolanaLocal,
			MaxPerCall: 1_000_000, Assets: []string{mint.String()}}}
	e.agent = agenttest.Start(t, e.agentOpts)
	if p := e.agent.Config.Pay; p == nil || p.MaxPerCall != 1_000_000 || p.Signer != signerURL || p.PolicySHA256 != agentapi.Sum(policyText) {
		t.Fatalf("effective configuration's pay: %+v", p)
	}
	if strings.Contains(string(e.agent.Config.Canonical()), payTok[:20]) {
		t.Fatal("the effective configuration carries the signer token")
	}
	gm, err := st.Admin.Mint(ctx, gwclient.MintRequest{Tools: []string{"paid_*"}, TTL: "1h", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	e.aliceToken = gm.Token
	conv := e.group("paid_*")

	toolResult := func(req agent.ChatRequest) string {
		t.Helper()
		m := req.Messages[len(req.Messages)-1]
		if m.Role != "tool" || m.Content == nil {
			t.Fatalf("the second model request does not end with the tool result: %+v", m)
		}
		return *m.Content
	}

	t.Run("PaysOnce", func(t *testing.T) {
		e := e.with(t)
		s.reset()
		s.queue(ok(completion("", [][2]string{{"paid_quote", `{}`}})), ok(completion("The quote is 42.", nil)))
		e.say(e.alice, conv, "@assistant get me a quote")
		r := e.reply(conv)
		if len(r.Receipt.Tools) != 1 || r.Receipt.Tools[0].Outcome != agent.OutcomeOK || r.Receipt.Tools[0].Payment == "" {
			t.Fatalf("receipt tools %+v", r.Receipt.Tools)
		}
		if got := toolResult(s.requests()[1]); got != "quote: 42" {
			t.Errorf("tool result %q", got)
		}
		if got, want := svm.Balance(t, dst), uint64(quotePrice); got != want {
			t.Errorf("payTo holds %d, want %d", got, want)
		}
		if got, want := svm.Balance(t, src), uint64(2_000_000-quotePrice); got != want {
			t.Errorf("the agent's account holds %d, want %d", got, want)
		}
		if n := up.count("quote"); n != 1 {
			t.Errorf("upstream saw %d quote calls, want 1", n)
		}
		// The receipt's transaction is the gateway's audited settlement.
		b, err := os.ReadFile(filepath.Join(st.GatewayData, "audit.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"payment":"`+r.Receipt.Tools[0].Payment+`"`) {
			t.Errorf("no gateway audit entry names the receipt's transaction %s", r.Receipt.Tools[0].Payment)
		}
	})

	t.Run("AboveThresholdWaitsForTheApprover", func(t *testing.T) {
		e := e.with(t)
		s.reset()
		s.queue(ok(completion("", [][2]string{{"paid_report", `{}`}})), ok(completion("Here is the report.", nil)))
		e.say(e.alice, conv, "@assistant buy the report")
		_, m := e.alice.next(t, conv, func(_ chat.Message, m *agentapi.Message) bool { return m.Kind == agentapi.KindApprovalRequest })
		req := m.ApprovalRequest
		if req.Gateway != signerURL || !strings.HasPrefix(req.Tool, signerapi.ToolPayment) || !strings.Contains(req.Arguments, fmt.Sprint(reportPrice)) {
			t.Fatalf("approval request %+v", req)
		}
		if err := req.VerifyArguments(); err != nil {
			t.Fatalf("the request's arguments do not verify: %v", err)
		}
		if svm.Balance(t, dst) != quotePrice || up.count("report") != 0 {
			t.Fatal("paid before the approval")
		}
		member := &gwclient.Member{BaseURL: req.Gateway, HTTP: raTLS}
		post := func(c *chat.Client) error {
			st, err := agentapi.NewApprovalStatement(c.Device(), req.ID, req.ArgumentsSHA256, agentapi.Approve, time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return member.PostStatement(ctx, st)
		}
		// Who else can answer this prompt? bob is in the conversation, not
		// the token's approver.
		if err := post(e.bob.c); err == nil {
			t.Fatal("the signer took bob's statement")
		} else if r, _ := gwclient.ReasonOf(err); r != signerapi.ReasonNotApprover {
			t.Fatalf("bob's statement: %v, want %s", err, signerapi.ReasonNotApprover)
		}
		if err := post(e.alice.c); err != nil {
			t.Fatalf("alice's statement: %v", err)
		}
		r := e.reply(conv)
		if len(r.Receipt.Tools) != 1 || r.Receipt.Tools[0].Payment == "" || r.Receipt.Tools[0].ApprovalID != req.ID {
			t.Fatalf("receipt tools %+v", r.Receipt.Tools)
		}
		if got, want := svm.Balance(t, dst), uint64(quotePrice+reportPrice); got != want {
			t.Errorf("payTo holds %d, want %d", got, want)
		}
		if n := up.count("report"); n != 1 {
			t.Errorf("upstream saw %d report calls, want 1", n)
		}
		// The statement is single-use.
		if err := post(e.alice.c); err == nil {
			t.Error("the signer took the same approval twice")
		}
	})

	t.Run("OverBudgetRefusedNamingTheRule", func(t *testing.T) {
		e := e.with(t)
		s.reset()
		s.queue(ok(completion("", [][2]string{{"paid_quote", `{}`}})), ok(completion("I could not pay for it.", nil)))
		e.say(e.alice, conv, "@assistant one more quote")
		r := e.reply(conv)
		if len(r.Receipt.Tools) != 1 || r.Receipt.Tools[0].Outcome != agent.OutcomeError || r.Receipt.Tools[0].Payment != "" {
			t.Fatalf("receipt tools %+v", r.Receipt.Tools)
		}
		if want := "(I did not pay for paid_quote: refused by rule " + signerapi.RuleTokenBudget + ".)"; !strings.Contains(r.Text, want) {
			t.Errorf("reply %q does not say %q", r.Text, want)
		}
		if got := toolResult(s.requests()[1]); !strings.Contains(got, signerapi.RuleTokenBudget) {
			t.Errorf("tool result %q does not name rule %s", got, signerapi.RuleTokenBudget)
		}
		if got, want := svm.Balance(t, dst), uint64(quotePrice+reportPrice); got != want {
			t.Errorf("payTo holds %d, want %d", got, want)
		}
		if n := up.count("quote"); n != 1 {
			t.Errorf("upstream saw %d quote calls, want 1", n)
		}
	})
}

// countingUpstream is a paid MCP server's upstream: it answers and counts.
type countingUpstream struct {
	mu    sync.Mutex
	calls map[string]int
}

func (u *countingUpstream) count(tool string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[tool]
}

func (u *countingUpstream) server() *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "paid", Version: "v0"}, nil)
	for name, answer := range map[string]string{"quote": "quote: 42", "report": "report: all good"} {
		srv.AddTool(&mcp.Tool{Name: name, InputSchema: map[string]any{"type": "object"}, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			u.mu.Lock()
			u.calls[name]++
			u.mu.Unlock()
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: answer}}}, nil
		})
	}
	return srv
}
