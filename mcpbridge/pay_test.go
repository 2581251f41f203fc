package mcpbridge

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/facilitator"
	"github.com/chatmcp/chatmcp/internal/svmtest"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/chatmcp/chatmcp/x402pay"
)

// TestPay: a desktop client calls a paid tool through the bridge; the
// server answers payment required (the MCP transport of x402), the bridge
// pays with its Payer (a key, litesvm as the chain: TEST runtime), sends
// the call again with the payment, and the client gets the tool's answer
// and the receipt. The server settles through a real facilitator, so the
// money moves once; a payer over its limit leaves the payment-required
// result as the answer.
func TestPay(t *testing.T) {
	s := svmtest.Start(t)
	mint, mintAuth := s.NewMint(t, 6)
	payerPub, payerKey := svmtest.NewKey(t)
	payTo, _ := svmtest.NewKey(t)
	s.MintTo(t, mint, mintAuth, s.CreateATA(t, payerPub, mint), 1_000_000)
	dst := s.CreateATA(t, payTo, mint)
	_, fp := svmtest.NewKey(t)
	s.Fund(t, svmtest.PublicKey(fp), 1_000_000_000)
	fac, err := facilitator.New(context.Background(), storetest.SQLite(t), &facilitator.Options{Network: x402.SolanaLocal, RPC: s.RPC, FeePayer: facilitator.LocalKey{Key: fp}})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	fsrv := &http.Server{Handler: fac.Handler()}
	go fsrv.Serve(ln)
	t.Cleanup(func() { fsrv.Close() })
	fc := &x402.FacilitatorClient{URL: "http://" + ln.Addr().String()}
	req := x402.PaymentRequirements{Scheme: x402.SchemeExact, Network: x402.SolanaLocal, Amount: "30000", Asset: mint.String(),
		PayTo: payTo.String(), MaxTimeoutSeconds: 60, Extra: &x402.Extra{FeePayer: svmtest.PublicKey(fp).String()}}

	// A paid MCP server, written against package x402 alone.
	server := mcp.NewServer(&mcp.Implementation{Name: "paid", Version: "v0"}, nil)
	server.AddTool(&mcp.Tool{Name: "quote", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, r *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, err := x402.PaymentFromMeta(r.Params.Meta)
		if err == nil && p != nil {
			if sr, err := fc.Settle(ctx, p, &req); err == nil && sr.Success {
				m, _ := x402.ToMeta(sr)
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "quote: 42"}}, Meta: mcp.Meta{x402.MetaPaymentResponse: m}}, nil
			}
		}
		structured, text, _ := x402.RequiredResult(&x402.PaymentRequired{X402Version: 2, Error: "payment required", Resource: &x402.ResourceInfo{URL: "mcp://tool/quote"}, Accepts: []x402.PaymentRequirements{req}})
		return &mcp.CallToolResult{IsError: true, StructuredContent: structured, Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(srv.Close)

	kp, _ := wallet.NewKeypair(payerKey)
	call := func(max uint64) *mcp.CallToolResult {
		payer := &x402pay.Payer{RPC: s.RPC, Address: payerPub, Signer: x402pay.WalletSigner{Keypair: kp}, Network: x402.SolanaLocal, Assets: []string{mint.String()}, MaxAmount: max}
		pay := func(ctx context.Context, pr *x402.PaymentRequired) (*x402.PaymentPayload, error) {
			return payer.Pay(ctx, &pr.Accepts[0], pr.Resource)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c2bR, c2bW := io.Pipe()
		b2cR, b2cW := io.Pipe()
		local, err := (&mcp.IOTransport{Reader: c2bR, Writer: b2cW}).Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, local, &Options{Endpoint: srv.URL, HTTP: http.DefaultClient, Pay: pay, Logf: t.Logf})
			b2cW.Close()
		}()
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "desktop", Version: "v0"}, nil).Connect(ctx, &mcp.IOTransport{Reader: b2cR, Writer: c2bW}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "quote", Arguments: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		cs.Close()
		c2bW.Close()
		<-done
		return res
	}
	res := call(100_000)
	if res.IsError || res.Content[0].(*mcp.TextContent).Text != "quote: 42" {
		t.Fatalf("paid call through the bridge: %+v", res.Content[0])
	}
	if sr, err := x402.SettleFromMeta(res.Meta); err != nil || sr == nil || !sr.Success {
		t.Fatalf("receipt: %+v, %v", sr, err)
	}
	if got := s.Balance(t, dst); got != 30_000 {
		t.Fatalf("payTo holds %d, want 30000", got)
	}
	res = call(29_999)
	if !res.IsError {
		t.Fatal("a payer over its limit paid")
	}
	if got := s.Balance(t, dst); got != 30_000 {
		t.Fatalf("payTo holds %d after a refused payment, want 30000", got)
	}
}
