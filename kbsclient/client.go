// Package kbsclient is the client side of the ChatMCP key broker: a workload
// fetching secrets through the attestation handshake, and an admin driving
// the admin API. It links only the wire protocol (package kbsapi), never the
// server or its storage, so the gateway's measured image stays small.
package kbsclient

import (
	"context"
	"crypto/hpke"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/kbsapi"
)

// maxResponseBody caps what the clients read from the KBS.
const maxResponseBody = kbsapi.MaxAdminBody

// Client is a workload fetching secrets: it runs the handshake with fresh
// evidence from Attester. Its zero HTTPClient means http.DefaultClient.
type Client struct {
	// BaseURL is the KBS, e.g. "https://kbs.example:8443". Required.
	BaseURL string
	// HTTPClient sends requests. If nil, http.DefaultClient. For a KBS
	// serving RA-TLS, use one from ratls.ClientConfig.
	HTTPClient *http.Client
	// Attester produces the evidence. Required.
	Attester attest.Attester
}

// Fetch runs the handshake for name and returns the current value. A
// refusal is an *Error whose Reason names the failed check.
func (c *Client) Fetch(ctx context.Context, name string) ([]byte, error) {
	v, _, err := c.FetchVersion(ctx, name)
	return v, err
}

// FetchVersion is Fetch that also returns the version released.
func (c *Client) FetchVersion(ctx context.Context, name string) ([]byte, int, error) {
	if c.Attester == nil {
		return nil, 0, errors.New("kbs client: no attester")
	}
	var ch kbsapi.Challenge
	if err := do(ctx, c.HTTPClient, http.MethodPost, c.BaseURL+kbsapi.PathRequest, "", kbsapi.ChallengeRequest{Secret: name, TEE: c.Attester.TEE()}, &ch); err != nil {
		return nil, 0, err
	}
	if len(ch.Nonce) != kbsapi.NonceSize {
		return nil, 0, fmt.Errorf("kbs: challenge nonce of %d bytes", len(ch.Nonce))
	}
	sk, err := kbsapi.HPKEKEM().GenerateKey()
	if err != nil {
		return nil, 0, err
	}
	pub := sk.PublicKey().Bytes()
	rd, err := kbsapi.ExpectedReportData(ch.Nonce, pub)
	if err != nil {
		return nil, 0, err
	}
	ev, err := c.Attester.Attest(ctx, rd)
	if err != nil {
		return nil, 0, fmt.Errorf("producing evidence: %w", err)
	}
	var rel kbsapi.Release
	if err := do(ctx, c.HTTPClient, http.MethodPost, c.BaseURL+kbsapi.PathAttest, "", kbsapi.AttestRequest{Secret: name, Nonce: ch.Nonce, Evidence: ev, PublicKey: pub}, &rel); err != nil {
		return nil, 0, err
	}
	if rel.Name != name {
		return nil, 0, fmt.Errorf("kbs: released %q, asked for %q", rel.Name, name)
	}
	value, err := hpkeOpen(sk, kbsapi.ReleaseInfo(rel.Name, rel.Version, ch.Nonce), rel.Enc, rel.Ciphertext)
	if err != nil {
		return nil, 0, fmt.Errorf("kbs: opening release: %w", err)
	}
	return value, rel.Version, nil
}

// AdminClient drives the admin API with a bearer token.
type AdminClient struct {
	// BaseURL is the KBS. Required.
	BaseURL string
	// Token is the admin token. Required.
	Token string
	// HTTPClient sends requests. If nil, http.DefaultClient.
	HTTPClient *http.Client
}

// Put creates name or rotates it to a new version.
func (a *AdminClient) Put(ctx context.Context, name string, value []byte, policy string) (*kbsapi.SecretInfo, error) {
	var out kbsapi.SecretInfo
	err := do(ctx, a.HTTPClient, http.MethodPut, a.secretURL(name, ""), a.Token, kbsapi.PutRequest{Value: value, Policy: policy}, &out)
	return &out, err
}

// SetPolicy replaces name's policy.
func (a *AdminClient) SetPolicy(ctx context.Context, name, policy string) (*kbsapi.SecretInfo, error) {
	var out kbsapi.SecretInfo
	err := do(ctx, a.HTTPClient, http.MethodPut, a.secretURL(name, "/policy"), a.Token, kbsapi.PolicyRequest{Policy: policy}, &out)
	return &out, err
}

// Revoke stops every release of name until it is put again.
func (a *AdminClient) Revoke(ctx context.Context, name string) (*kbsapi.SecretInfo, error) {
	var out kbsapi.SecretInfo
	err := do(ctx, a.HTTPClient, http.MethodPost, a.secretURL(name, "/revoke"), a.Token, nil, &out)
	return &out, err
}

// List describes every secret, without values.
func (a *AdminClient) List(ctx context.Context) ([]kbsapi.SecretInfo, error) {
	var out kbsapi.SecretList
	if err := do(ctx, a.HTTPClient, http.MethodGet, strings.TrimRight(a.BaseURL, "/")+kbsapi.PathAdminSecrets, a.Token, nil, &out); err != nil {
		return nil, err
	}
	return out.Secrets, nil
}

func (a *AdminClient) secretURL(name, suffix string) string {
	return strings.TrimRight(a.BaseURL, "/") + kbsapi.PathAdminSecrets + "/" + url.PathEscape(name) + suffix
}

// do sends one request to the KBS (internal/edge): answers are decoded
// strictly, a refusal is an *Error.
func do(ctx context.Context, hc *http.Client, method, u, token string, in, out any) error {
	c := edge.Client{Service: "kbs", HTTP: hc, MaxResponse: maxResponseBody}
	return c.Do(ctx, method, u, token, in, out)
}

// Error is a refusal by the KBS, as the client sees it (internal/edge's
// one client error type): Reason is one of the kbsapi.Reason words or an
// attest.Check word.
type Error = edge.APIError

func hpkeOpen(sk hpke.PrivateKey, info, enc, ciphertext []byte) ([]byte, error) {
	if len(enc) != kbsapi.EncSize {
		return nil, errors.New("release: enc is not 32 bytes")
	}
	return hpke.Open(sk, kbsapi.HPKEKDF(), kbsapi.HPKEAEAD(), info, append(append([]byte(nil), enc...), ciphertext...))
}
