package gwclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/internal/wire"
)

// MaxResponseSize caps an admin API response body.
const MaxResponseSize = 4 << 20

// Admin calls a gateway's admin API (/admin/v1/...).
type Admin struct {
	// BaseURL is the gateway, https://host:port. Required.
	BaseURL string
	// Token is the admin token. Required.
	Token string
	// HTTP is the client, whose transport must enforce a Trust. Required.
	HTTP *http.Client
}

// ReasonHTTP is the Reason of an error answer that carries no reason code
// (not from a gateway, or from one older than reason codes).
const ReasonHTTP = "http"

// HTTPError is a non-2xx answer from the gateway. Callers branch on Reason,
// one of the gatewayapi.Reason codes (or ReasonHTTP), never on Msg.
type HTTPError struct {
	Status int
	// Reason is the gateway's stable reason code.
	Reason string
	// Msg is the gateway's {"error": ...} sentence, or the status text.
	Msg string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("gateway refused (%d, %s): %s", e.Status, e.Reason, e.Msg)
}

// ReasonOf returns the reason code of a gateway's error answer in err's
// chain, and false when err is not one.
func ReasonOf(err error) (string, bool) {
	var he *HTTPError
	if !errors.As(err, &he) {
		return "", false
	}
	return he.Reason, true
}

// IsReason reports whether err is a gateway's error answer with the
// reason code reason.
func IsReason(err error, reason string) bool {
	r, ok := ReasonOf(err)
	return ok && r == reason
}

// do sends a request and decodes a JSON answer into out (nil: expect none).
func (a *Admin) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readHTTPError(resp)
	}
	if out == nil {
		return nil
	}
	if err := readJSON(resp, out); err != nil {
		return fmt.Errorf("gateway response to %s %s: %w", method, path, err)
	}
	return nil
}

// readJSON decodes an admin API answer, capped at MaxResponseSize. Unknown
// members are ignored so that a newer gateway can add fields: the peer is
// the authenticated gateway, and nothing here is a security decision.
func readJSON(resp *http.Response, out any) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return err
	}
	if len(b) > MaxResponseSize {
		return fmt.Errorf("answer exceeds %d bytes", MaxResponseSize)
	}
	return json.Unmarshal(b, out)
}

// readStrict decodes a response body strictly (internal/wire), capped at
// MaxResponseSize.
func readStrict(resp *http.Response, out any) error {
	return wire.Read(resp.Body, MaxResponseSize, out)
}

// readHTTPError turns an error answer into an *HTTPError. Unknown members
// are ignored, like readJSON; a body without a reason code gets ReasonHTTP.
func readHTTPError(resp *http.Response) error {
	he := &HTTPError{Status: resp.StatusCode, Reason: ReasonHTTP, Msg: http.StatusText(resp.StatusCode)}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e gatewayapi.ErrorBody
	if json.Unmarshal(b, &e) == nil {
		if e.Error != "" {
			he.Msg = e.Error
		}
		if e.Reason != "" {
			he.Reason = e.Reason
		}
	}
	return he
}

// MintRequest asks for a new token.
type MintRequest struct {
	Tools []string `json:"tools"`
	// TTL is a Go duration string; empty means the gateway's default (1h).
	TTL     string `json:"ttl,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// Minted is a new token.
type Minted struct {
	ID      string    `json:"id"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// Mint asks the gateway for a token.
func (a *Admin) Mint(ctx context.Context, r MintRequest) (*Minted, error) {
	var m Minted
	if err := a.do(ctx, http.MethodPost, "/admin/v1/tokens", r, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Revoke revokes a token id (and so every token attenuated from it).
func (a *Admin) Revoke(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodPost, "/admin/v1/tokens/"+url.PathEscape(id)+"/revoke", nil, nil)
}

// Approval is a tools/call waiting for a person.
type Approval struct {
	ID              string          `json:"id"`
	Principal       string          `json:"principal"`
	Tool            string          `json:"tool"`
	ArgumentsSHA256 string          `json:"arguments_sha256"`
	Arguments       json.RawMessage `json:"arguments,omitempty"`
	Created         time.Time       `json:"created"`
	Expires         time.Time       `json:"expires"`
}

// Approvals lists pending approvals.
func (a *Admin) Approvals(ctx context.Context) ([]Approval, error) {
	var l []Approval
	if err := a.do(ctx, http.MethodGet, "/admin/v1/approvals", nil, &l); err != nil {
		return nil, err
	}
	return l, nil
}

// Decide approves (approve true) or denies a pending call.
func (a *Admin) Decide(ctx context.Context, id string, approve bool) error {
	verb := "deny"
	if approve {
		verb = "approve"
	}
	return a.do(ctx, http.MethodPost, "/admin/v1/approvals/"+url.PathEscape(id)+"/"+verb, nil, nil)
}

// PendingTool is a tool whose definition changed since it was pinned.
type PendingTool struct {
	Name      string `json:"name"`
	OldSHA256 string `json:"old_sha256"`
	// NewSHA256 is the hash of Definition, which ApproveTool must name.
	NewSHA256  string          `json:"new_sha256"`
	Definition json.RawMessage `json:"definition"`
	Seen       time.Time       `json:"seen"`
}

// PendingTools lists changed tool definitions awaiting approval.
func (a *Admin) PendingTools(ctx context.Context) ([]PendingTool, error) {
	var l []PendingTool
	if err := a.do(ctx, http.MethodGet, "/admin/v1/tools/pending", nil, &l); err != nil {
		return nil, err
	}
	return l, nil
}

// ApproveTool pins the changed definition of tool name, enabling the tool
// again, provided the pending definition still has the hex SHA-256 sha256
// (the NewSHA256 that was reviewed). If it changed since, the gateway
// refuses with reason gatewayapi.ReasonSHA256Mismatch and the tool stays
// disabled.
func (a *Admin) ApproveTool(ctx context.Context, name, sha256 string) error {
	return a.do(ctx, http.MethodPost, "/admin/v1/tools/"+url.PathEscape(name)+"/approve", struct {
		SHA256 string `json:"sha256"`
	}{sha256}, nil)
}

// Info is the gateway's self-description.
type Info struct {
	Audience string   `json:"audience"`
	Tools    []string `json:"tools"`
	// Dev is true for a development gateway on simulated evidence.
	Dev bool `json:"dev"`
}

// Info fetches /admin/v1/info.
func (a *Admin) Info(ctx context.Context) (*Info, error) {
	var i Info
	if err := a.do(ctx, http.MethodGet, "/admin/v1/info", nil, &i); err != nil {
		return nil, err
	}
	return &i, nil
}
