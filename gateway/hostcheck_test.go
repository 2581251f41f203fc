package gateway

import (
	"net/http"
	"testing"
)

// FuzzHostPolicy: any Host and Origin a client sends are either allowed or
// refused with one of the two reason codes, never a panic, and a refused
// Host is never one of the listen address's names.
func FuzzHostPolicy(f *testing.F) {
	f.Add("127.0.0.1:8443", "https://localhost:8443")
	f.Add("evil.example", "http://evil.example")
	f.Add("[::1]", "null")
	f.Add("", "//x")
	f.Add("GW.example:1", "https://gw.example:99/path")
	for _, listen := range []string{"127.0.0.1:8443", "0.0.0.0:8443", "gw.example:8443"} {
		p := newHostPolicy(listen, []string{"gw.example", "other.example:9443"})
		if p.allows("evil.example") {
			f.Fatalf("listen %s allows evil.example", listen)
		}
	}
	p := newHostPolicy("127.0.0.1:8443", []string{"gw.example"})
	f.Fuzz(func(t *testing.T, host, origin string) {
		r := &http.Request{Host: host, Header: http.Header{}}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		e := p.check(r)
		if e == nil {
			return
		}
		if e.Status != http.StatusForbidden || (e.Reason != "host not allowed" && e.Reason != "origin not allowed") {
			t.Fatalf("refusal %+v", e)
		}
		if e.Reason == "host not allowed" && (host == "127.0.0.1:8443" || host == "localhost" || host == "gw.example") {
			t.Fatalf("refused an allowed host %q", host)
		}
	})
}
