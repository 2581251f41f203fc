package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/facilitator"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/svmtest"
	"github.com/chatmcp/chatmcp/ratls"
	"github.com/chatmcp/chatmcp/signer/daemon/daemontest"
	"github.com/chatmcp/chatmcp/signer/signertest"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/x402"
)

// TestConnectPayWith: `chatmcp connect --pay-with SIGNER_URL` end to end,
// every daemon real on loopback: the gateway (devstack, RA-TLS on the
// INSECURE simulated TEE) prices a tool of an upstream, settling through
// a facilitator on litesvm (the TEST runtime); chatmcp-signer (--dev,
// RA-TLS) holds the payer's key from the KBS. A desktop client's call is
// paid once through the signer (balances move once, the receipt is in
// _meta); a call above the signer's approve_above waits, connect says
// which payment the signer holds, and it is paid once the signer's
// operator approves; the next call is over the token's budget: connect does not pay,
// says the signer's rule, the client gets the payment-required result and
// the upstream never sees the call.
func TestConnectPayWith(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const price, reportPrice = 30_000, 60_000
	svm := svmtest.Start(t)
	mint, mintAuth := svm.NewMint(t, 6)
	payKey, payer := signertest.NewKeypair(t)
	payTo, _ := svmtest.NewKey(t)
	src := svm.CreateATA(t, payer, mint)
	dst := svm.CreateATA(t, payTo, mint)
	svm.MintTo(t, mint, mintAuth, src, 1_000_000)
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

	var upstreamCalls atomic.Int64
	up := mcp.NewServer(&mcp.Implementation{Name: "paid", Version: "v0"}, nil)
	for _, name := range []string{"quote", "report"} {
		up.AddTool(&mcp.Tool{Name: name, InputSchema: map[string]any{"type": "object"}, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				upstreamCalls.Add(1)
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + ": 42"}}}, nil
			})
	}
	upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(upSrv.Close)

	st, err := devstack.Start(ctx, &devstack.Options{Dir: filepath.Join(t.TempDir(), "stack"), Secrets: map[string][]byte{"pay-key": payKey.MarshalKeypair()},
		Upstreams: fmt.Sprintf("paid:\n  url: %q\n  prices:\n    - tools: quote\n      price: {amount: \"%d\", asset: %s, pay_to: %s, network: %q}\n    - tools: report\n      price: {amount: \"%d\", asset: %[3]s, pay_to: %[4]s, network: %[5]q}\n",
			upSrv.URL, price, mint, payTo, x402.SolanaLocal, reportPrice),
		GatewayConfig: fmt.Sprintf("facilitator: {url: \"http://%s\"}\n", fln.Addr())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	sd := daemontest.Start(t, st.KBSURL, "pay-key", fmt.Sprintf(`programs: [TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA, ComputeBudget111111111111111111111111111111, MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr]
mints: [%s]
recipients: [%s]
max_per_tx: 1000000
max_compute_unit_price: 5000000
window: {period: 24h, max: 3000000}
approve_above: 50000`, mint, payTo))
	policy, err := attest.LoadPolicy(st.PolicyFile)
	if err != nil {
		t.Fatal(err)
	}
	admin := &signerclient.Admin{Client: signerclient.Client{BaseURL: sd.URL, Token: sd.AdminToken(t),
		HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: ratls.ClientConfig(ratls.NewVerifier(verifiers.New(nil), policy, nil))}}}}
	payTok, err := admin.Mint(ctx, signerapi.MintRequest{Budget: fmt.Sprintf("%d/24h", price+reportPrice), TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	gwTok, err := st.Admin.Mint(ctx, gwclient.MintRequest{Tools: []string{"paid_*"}, TTL: "1h", Subject: "desktop"})
	if err != nil {
		t.Fatal(err)
	}

	// connect, in-process, with the desktop client on its stdio.
	c2bR, c2bW := io.Pipe()
	b2cR, b2cW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"connect", st.GatewayURL, "--policy", st.PolicyFile, "--token", gwTok.Token,
			"--pay-with", sd.URL, "--pay-token", payTok.Token, "--pay-rpc", svm.URL, "--pay-network", x402.SolanaLocal,
			"--pay-max", "100000", "--pay-asset", mint.String()},
			&Env{Stdin: c2bR, Stdout: b2cW, Stderr: stderr, Getenv: func(string) string { return "" }})
		b2cW.Close()
	}()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "desktop", Version: "v0"}, nil).Connect(ctx, &mcp.IOTransport{Reader: b2cR, Writer: c2bW}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, stderr.String())
	}
	call := func(tool string) *mcp.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{}})
		if err != nil {
			t.Fatalf("call: %v\n%s", err, stderr.String())
		}
		return res
	}

	res := call("paid_quote")
	if res.IsError || len(res.Content) == 0 || res.Content[0].(*mcp.TextContent).Text != "quote: 42" {
		t.Fatalf("paid call: %+v\n%s", res.Content, stderr.String())
	}
	if sr, err := x402.SettleFromMeta(res.Meta); err != nil || sr == nil || !sr.Success || sr.Transaction == "" {
		t.Fatalf("receipt %+v, %v", sr, err)
	}
	if got := svm.Balance(t, dst); got != price {
		t.Fatalf("payTo holds %d, want %d", got, price)
	}
	if got := svm.Balance(t, src); got != 1_000_000-price {
		t.Fatalf("payer holds %d, want %d", got, 1_000_000-price)
	}

	// Above approve_above the call waits while the signer holds the
	// payment; connect says which, and the signer's operator approves.
	reported := make(chan *mcp.CallToolResult, 1)
	go func() {
		res, _ := cs.CallTool(ctx, &mcp.CallToolParams{Name: "paid_report", Arguments: map[string]any{}})
		reported <- res
	}()
	var held []signerapi.Approval
	for len(held) == 0 {
		select {
		case res := <-reported:
			t.Fatalf("the call above approve_above did not wait: %+v\n%s", res, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if held, err = admin.Approvals(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if svm.Balance(t, dst) != price || upstreamCalls.Load() != 1 {
		t.Fatal("paid before the approval")
	}
	for !strings.Contains(stderr.String(), "the signer holds payment "+held[0].ID) {
		select {
		case <-ctx.Done():
			t.Fatalf("connect did not say which payment waits:\n%s", stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := admin.Decide(ctx, held[0].ID, true); err != nil {
		t.Fatal(err)
	}
	if res := <-reported; res == nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "report: 42" {
		t.Fatalf("approved call: %+v\n%s", res, stderr.String())
	}
	if got := svm.Balance(t, dst); got != price+reportPrice {
		t.Fatalf("payTo holds %d, want %d", got, price+reportPrice)
	}

	res = call("paid_quote")
	if pr, err := x402.RequiredFromResult(res.StructuredContent, ""); !res.IsError || err != nil || pr == nil {
		t.Fatalf("over the budget: not the payment-required result: %+v", res.Content)
	}
	if !strings.Contains(stderr.String(), signerapi.RuleTokenBudget) {
		t.Errorf("connect did not name rule %s:\n%s", signerapi.RuleTokenBudget, stderr.String())
	}
	if got := svm.Balance(t, dst); got != price+reportPrice {
		t.Errorf("payTo holds %d after a refused payment, want %d", got, price+reportPrice)
	}
	if n := upstreamCalls.Load(); n != 2 {
		t.Errorf("upstream saw %d calls, want 2", n)
	}
	cs.Close()
	c2bW.Close()
	if code := <-done; code != 0 {
		t.Errorf("connect exited %d:\n%s", code, stderr.String())
	}
}
