package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/go-json-experiment/json"
)

// ReasonHTTP is APIError.Reason for an error answer without a reason code:
// not from the service (a proxy's page), or from one older than reason
// codes.
const ReasonHTTP = "http"

// MaxErrorBody caps the error answer a client reads.
const MaxErrorBody = 64 << 10

// DefaultMaxResponse caps a response when Client.MaxResponse is zero.
const DefaultMaxResponse = 4 << 20

// APIError is an error answer as a client sees it. Callers branch on
// Reason, never on Msg.
type APIError struct {
	// Service names the peer ("relay", "gateway", "kbs").
	Service string
	// Status is the HTTP status.
	Status int
	// Reason is the service's reason code, or ReasonHTTP.
	Reason string
	// Msg is the service's sentence, or the HTTP status.
	Msg string
	// Body is the error answer as received (at most MaxErrorBody bytes),
	// for members a service adds to ErrorBody.
	Body []byte
}

func (e *APIError) Error() string {
	if e.Service == "" {
		return fmt.Sprintf("refused (%s): %s", e.Reason, e.Msg)
	}
	return fmt.Sprintf("%s refused (%s): %s", e.Service, e.Reason, e.Msg)
}

// ReasonOf returns the reason code of the error answer in err's chain, and
// false when err carries none.
func ReasonOf(err error) (string, bool) {
	var e *APIError
	if !errors.As(err, &e) {
		return "", false
	}
	return e.Reason, true
}

// IsReason reports whether err is an error answer with one of reasons.
func IsReason(err error, reasons ...string) bool {
	r, ok := ReasonOf(err)
	if !ok {
		return false
	}
	for _, want := range reasons {
		if r == want {
			return true
		}
	}
	return false
}

// Client sends JSON requests to one service.
type Client struct {
	// Service names the peer in errors ("relay refused (...)"). Required.
	Service string
	// HTTP sends requests. If nil, http.DefaultClient.
	HTTP *http.Client
	// MaxResponse caps a successful response body. If zero,
	// DefaultMaxResponse.
	MaxResponse int64
	// AllowUnknownMembers decodes responses ignoring members out does not
	// name, so a newer peer may add fields (only where nothing decoded is a
	// security decision). If false, responses are decoded strictly
	// (internal/wire).
	AllowUnknownMembers bool
}

// Call is one request and what its answer arrived on.
type Call struct {
	Method string
	URL    string
	// Token is sent as "Authorization: Bearer Token". If empty, none.
	Token string
	// Header holds further request headers. May be nil.
	Header http.Header
	// In is marshalled as the JSON request body. If nil, no body.
	In any
	// Out receives the decoded JSON answer. If nil, the answer is
	// discarded.
	Out any
	// TLS is set to the state of the connection the answer arrived on (nil
	// over plain HTTP), for callers that check its certificate.
	TLS *tls.ConnectionState
}

// Do sends one JSON request and decodes the answer into out. A non-2xx
// answer is an *APIError; a transport failure is "<service> unreachable".
func (c *Client) Do(ctx context.Context, method, url, token string, in, out any) error {
	return c.Call(ctx, &Call{Method: method, URL: url, Token: token, In: in, Out: out})
}

// Call sends call and fills its Out and TLS.
func (c *Client) Call(ctx context.Context, call *Call) error {
	var body io.Reader
	if call.In != nil {
		b, err := json.Marshal(call.In)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, call.Method, call.URL, body)
	if err != nil {
		return err
	}
	for k, vs := range call.Header {
		req.Header[k] = vs
	}
	if call.In != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if call.Token != "" {
		req.Header.Set("Authorization", "Bearer "+call.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s unreachable: %w", c.Service, err)
	}
	defer resp.Body.Close()
	call.TLS = resp.TLS
	if resp.StatusCode/100 != 2 {
		return c.readError(resp)
	}
	limit := c.MaxResponse
	if limit == 0 {
		limit = DefaultMaxResponse
	}
	if call.Out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, limit))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("%s: reading response to %s %s: %w", c.Service, call.Method, req.URL.Path, err)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("%s: response to %s %s exceeds %d bytes: %w", c.Service, call.Method, req.URL.Path, limit, wire.ErrTooLarge)
	}
	if c.AllowUnknownMembers {
		err = json.Unmarshal(b, call.Out)
	} else {
		err = wire.Decode(b, call.Out)
	}
	if err != nil {
		return fmt.Errorf("%s: malformed response to %s %s: %w", c.Service, call.Method, req.URL.Path, err)
	}
	return nil
}

// readError turns an error answer into an *APIError. Members other than
// error and reason are ignored (they stay in Body); an answer without a
// reason code gets ReasonHTTP.
func (c *Client) readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	e := &APIError{Service: c.Service, Status: resp.StatusCode, Reason: ReasonHTTP, Body: b}
	var eb ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Reason != "" {
		e.Reason = eb.Reason
		e.Msg = eb.Error
	}
	if e.Msg == "" {
		e.Msg = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return e
}

// BearerTransport returns a round tripper that sets "Authorization: Bearer
// token" on a copy of each request and sends it over base
// (http.DefaultTransport if nil): for clients, such as an MCP client
// session, whose requests are built by code that takes no token.
func BearerTransport(token string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &bearer{token: token, base: base}
}

type bearer struct {
	token string
	base  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}
