package facilitator

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/go-json-experiment/json"
)

// Client calls a facilitator's HTTP API (this package's or any that
// speaks x402 v2). Resource servers (the gateway, the relay) use it.
type Client struct {
	// URL is the facilitator's base URL. Required.
	URL string
	// Token is the bearer token, if the facilitator needs one.
	Token string
	// HTTP is the HTTP client. If nil, http.DefaultClient.
	HTTP *http.Client
}

// Verify calls POST /verify.
func (c *Client) Verify(ctx context.Context, p *x402.PaymentPayload, req *x402.PaymentRequirements) (*x402.VerifyResponse, error) {
	var out x402.VerifyResponse
	if err := c.post(ctx, x402.PathVerify, p, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Settle calls POST /settle.
func (c *Client) Settle(ctx context.Context, p *x402.PaymentPayload, req *x402.PaymentRequirements) (*x402.SettleResponse, error) {
	var out x402.SettleResponse
	if err := c.post(ctx, x402.PathSettle, p, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Supported calls GET /supported.
func (c *Client) Supported(ctx context.Context) (*x402.SupportedResponse, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+x402.PathSupported, nil)
	if err != nil {
		return nil, err
	}
	var out x402.SupportedResponse
	if err := c.do(r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) post(ctx context.Context, path string, p *x402.PaymentPayload, req *x402.PaymentRequirements, out any) error {
	body, err := json.Marshal(&x402.FacilitatorRequest{X402Version: x402.Version, PaymentPayload: *p, PaymentRequirements: *req})
	if err != nil {
		return err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	return c.do(r, out)
}

func (c *Client) do(r *http.Request, out any) error {
	if c.Token != "" {
		r.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(r)
	if err != nil {
		return fmt.Errorf("facilitator %s: %w", r.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, x402.MaxBody+1))
	if err != nil {
		return fmt.Errorf("facilitator %s: %w", r.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
		return fmt.Errorf("facilitator %s: HTTP %d: %.200s", r.URL.Path, resp.StatusCode, data)
	}
	if err := wire.Decode(data, out); err != nil {
		return fmt.Errorf("facilitator %s: malformed answer: %v", r.URL.Path, err)
	}
	return nil
}
