// Package gwtest is for tests that call a gateway as a token holder: an
// HTTP client that presents a bearer token on every request.
package gwtest

import (
	"net/http"

	"github.com/chatmcp/chatmcp/internal/edge"
)

// Client returns an HTTP client that sends "Authorization: Bearer token"
// on every request over base (http.DefaultTransport if nil).
func Client(token string, base http.RoundTripper) *http.Client {
	return &http.Client{Transport: Transport(token, base)}
}

// Transport is edge.BearerTransport.
func Transport(token string, base http.RoundTripper) http.RoundTripper {
	return edge.BearerTransport(token, base)
}
