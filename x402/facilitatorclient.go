package x402

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/go-json-experiment/json"
)

// FacilitatorClient calls a facilitator's HTTP API (package facilitator's
// or any that speaks x402 v2). Resource servers (the gateway, the relay)
// use it; it links no facilitator code.
type FacilitatorClient struct {
	// URL is the facilitator's base URL. Required.
	URL string
	// Token is the bearer token, if the facilitator needs one.
	Token string
	// HTTP is the HTTP client. If nil, http.DefaultClient.
	HTTP *http.Client
}

// Verify calls POST /verify.
func (c *FacilitatorClient) Verify(ctx context.Context, p *PaymentPayload, req *PaymentRequirements) (*VerifyResponse, error) {
	var out VerifyResponse
	if err := c.post(ctx, PathVerify, p, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Settle calls POST /settle.
func (c *FacilitatorClient) Settle(ctx context.Context, p *PaymentPayload, req *PaymentRequirements) (*SettleResponse, error) {
	var out SettleResponse
	if err := c.post(ctx, PathSettle, p, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Supported calls GET /supported.
func (c *FacilitatorClient) Supported(ctx context.Context) (*SupportedResponse, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+PathSupported, nil)
	if err != nil {
		return nil, err
	}
	var out SupportedResponse
	if err := c.do(r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *FacilitatorClient) post(ctx context.Context, path string, p *PaymentPayload, req *PaymentRequirements, out any) error {
	body, err := json.Marshal(&FacilitatorRequest{X402Version: Version, PaymentPayload: *p, PaymentRequirements: *req})
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

func (c *FacilitatorClient) do(r *http.Request, out any) error {
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
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
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
