package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/x402"
)

// Paid tools (x402 v2, MCP transport). A tool an upstream prices is
// answered, without a payment, by a tool result with isError and the
// PaymentRequired in structuredContent and content[0].text; with a
// payment in params._meta["x402/payment"], the pay step verifies and
// settles it through the facilitator after the call's confirmation and
// before its decision entry (which names the transaction) and before the
// upstream sees it; the receipt goes back in
// result._meta["x402/payment-response"]. The payment is spent even when
// the upstream then fails: settling first is what keeps an unpaid call
// from ever reaching the upstream.

// FacilitatorConfig is the `facilitator` key of the configuration.
type FacilitatorConfig struct {
	// URL is the facilitator's base URL. Required.
	URL string `yaml:"url"`
	// TokenFile holds the facilitator's bearer token. If empty, none.
	TokenFile string `yaml:"token_file"`

	once     sync.Once
	client   *x402.FacilitatorClient
	feePayer string // from the facilitator's /supported, on the first paid call
	network  string
	err      error
}

// ToolPrice prices the tools of an upstream whose names match Tools.
type ToolPrice struct {
	// Tools is a pattern (path.Match) over the upstream's tool names.
	Tools string `yaml:"tools"`
	Price Price  `yaml:"price"`
}

// Price is what one call of a paid tool costs: an x402 `exact` transfer
// of Amount atomic units of the SPL mint Asset to PayTo's associated
// token account on Network (CAIP-2).
type Price struct {
	Amount  string `yaml:"amount"`
	Asset   string `yaml:"asset"`
	PayTo   string `yaml:"pay_to"`
	Network string `yaml:"network"`
}

func (c *Config) validatePrices() error {
	priced := false
	for _, name := range c.UpstreamNames() {
		for i, p := range c.Upstreams[name].Prices {
			if _, err := path.Match(p.Tools, ""); err != nil || p.Tools == "" {
				return fmt.Errorf("upstream %s: prices[%d]: tools %q is not a pattern", name, i, p.Tools)
			}
			if err := p.Price.validate(); err != nil {
				return fmt.Errorf("upstream %s: prices[%d]: %w", name, i, err)
			}
			priced = true
		}
	}
	if c.Facilitator != nil {
		u, err := url.Parse(c.Facilitator.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("facilitator: url %q is not an http(s) URL", c.Facilitator.URL)
		}
	} else if priced {
		return errors.New("facilitator: required because an upstream prices a tool")
	}
	return nil
}

func (p *Price) validate() error {
	if _, err := x402.ParseAmount(p.Amount); err != nil {
		return fmt.Errorf("price: %w", err)
	}
	for k, v := range map[string]string{"asset": p.Asset, "pay_to": p.PayTo} {
		if _, err := solana.PublicKeyFromBase58(v); err != nil {
			return fmt.Errorf("price: %s %q is not a Solana address", k, v)
		}
	}
	if n, err := x402.ParseNetwork(p.Network); err != nil || !n.IsSolana() {
		return fmt.Errorf("price: network %q is not a Solana CAIP-2 id", p.Network)
	}
	return nil
}

// priceOf is the price of t, or nil for a free tool.
func priceOf(t *tool) *Price {
	for i := range t.upstream.cfg.Prices {
		p := &t.upstream.cfg.Prices[i]
		if ok, _ := path.Match(p.Tools, t.def.Name); ok {
			return &p.Price
		}
	}
	return nil
}

// facilitator returns the client and the fee payer, asking the
// facilitator's /supported once.
func (s *Server) facilitator(ctx context.Context, network string) (*x402.FacilitatorClient, string, error) {
	f := s.cfg.Facilitator
	f.once.Do(func() {
		c := &x402.FacilitatorClient{URL: strings.TrimRight(f.URL, "/")}
		if f.TokenFile != "" {
			b, err := os.ReadFile(f.TokenFile)
			if err != nil {
				f.err = fmt.Errorf("facilitator token: %w", err)
				return
			}
			c.Token = strings.TrimSpace(string(b))
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		sup, err := c.Supported(ctx)
		if err != nil {
			f.err = err
			return
		}
		for _, k := range sup.Kinds {
			if k.X402Version == x402.Version && k.Scheme == x402.SchemeExact && k.Extra != nil && k.Extra.FeePayer != "" {
				f.client, f.feePayer, f.network = c, k.Extra.FeePayer, k.Network
				return
			}
		}
		f.err = errors.New("the facilitator supports no x402 v2 exact scheme")
	})
	if f.err != nil {
		return nil, "", f.err
	}
	if network != f.network {
		return nil, "", fmt.Errorf("the facilitator settles on %s, the price is on %s", f.network, network)
	}
	return f.client, f.feePayer, nil
}

// requirements are the x402 requirements of a call of c's tool at p.
func (s *Server) requirements(c *toolCall, p *Price, feePayer string) *x402.PaymentRequired {
	return &x402.PaymentRequired{
		X402Version: x402.Version,
		Resource:    &x402.ResourceInfo{URL: "mcp://tool/" + c.tool.exposed, Description: c.tool.def.Description},
		Accepts: []x402.PaymentRequirements{{Scheme: x402.SchemeExact, Network: p.Network, Amount: p.Amount,
			Asset: p.Asset, PayTo: p.PayTo, MaxTimeoutSeconds: 60, Extra: &x402.Extra{FeePayer: feePayer}}},
	}
}

// paymentRequired is the MCP transport's payment-required tool result.
func paymentRequired(pr *x402.PaymentRequired) *refused {
	structured, text, err := x402.RequiredResult(pr)
	if err != nil {
		return deny("payment required", refusal("payment required"))
	}
	return &refused{reason: "payment required: " + pr.Error, result: &mcp.CallToolResult{IsError: true,
		StructuredContent: structured, Content: []mcp.Content{&mcp.TextContent{Text: text}}}}
}

// pay is the pay step: free tools pass; a paid tool's call needs a payment
// of its price, which is settled here (exactly once: the facilitator's
// ledger refuses a replayed payment).
func (s *Server) pay(ctx context.Context, c *toolCall) *refused {
	p := priceOf(c.tool)
	if p == nil {
		return nil
	}
	fc, feePayer, err := s.facilitator(ctx, p.Network)
	if err != nil {
		s.log.Error("facilitator unavailable: refusing a paid call", "err", err)
		return deny("facilitator unavailable", refusal("payments are unavailable (the facilitator did not answer); the call was not made"))
	}
	pr := s.requirements(c, p, feePayer)
	payment, err := x402.PaymentFromMeta(c.req.Params.Meta)
	if err != nil {
		pr.Error = "malformed payment: " + err.Error()
		return paymentRequired(pr)
	}
	if payment == nil {
		pr.Error = "payment required"
		return paymentRequired(pr)
	}
	req, err := x402.Match(payment, pr.Accepts)
	if err != nil {
		pr.Error = err.Error()
		return paymentRequired(pr)
	}
	// No money moves unless the log can say so: the intent to settle is
	// durable before the facilitator is asked (fail closed), and the
	// decision entry then names the transaction.
	e := s.entry(c, auditCallPayment)
	e.Decision, e.Reason = "settling", fmt.Sprintf("payment of %s %s to %s on %s", req.Amount, req.Asset, req.PayTo, req.Network)
	if err := s.appendAudit(ctx, e); err != nil {
		s.log.Error("audit append failed: refusing a paid call before settlement", "err", err)
		return deny("audit log unavailable", &jsonrpc.Error{Code: jsonrpc.CodeInternalError,
			Message: "chatmcp-gateway: audit log unavailable; the payment was not settled and the call was not made"})
	}
	sr, err := fc.Settle(ctx, payment, req)
	if err != nil {
		s.log.Error("facilitator settle failed", "err", err)
		return deny("facilitator unavailable", refusal("payments are unavailable (the facilitator did not answer); the call was not made"))
	}
	if !sr.Success {
		pr.Error = "payment refused: " + sr.ErrorReason
		if sr.ErrorMessage != "" {
			pr.Error += ": " + sr.ErrorMessage
		}
		return paymentRequired(pr)
	}
	c.payment = sr
	return nil
}

// withReceipt puts the settlement into the result's _meta.
func withReceipt(res *mcp.CallToolResult, sr *x402.SettleResponse) *mcp.CallToolResult {
	if res == nil || sr == nil {
		return res
	}
	m, err := x402.ToMeta(sr)
	if err != nil {
		return res
	}
	if res.Meta == nil {
		res.Meta = mcp.Meta{}
	}
	res.Meta[x402.MetaPaymentResponse] = m
	return res
}
