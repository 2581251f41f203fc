// Package gwtest is for tests that call a gateway as a token holder: an
// HTTP client that presents a bearer token on every request.
package gwtest

import "net/http"

// Client returns an HTTP client that sends "Authorization: Bearer token"
// on every request over base (http.DefaultTransport if nil).
func Client(token string, base http.RoundTripper) *http.Client {
	return &http.Client{Transport: Transport(token, base)}
}

// Transport returns a round tripper that sets "Authorization: Bearer
// token" on a copy of each request and sends it over base
// (http.DefaultTransport if nil).
func Transport(token string, base http.RoundTripper) http.RoundTripper {
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
