package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/internal/edge"
)

// DNS rebinding. A web page on another origin can make a browser on the
// gateway's machine (or network) send requests to the gateway under a name
// the attacker controls that resolves to the gateway's address. Such a
// request names the attacker's host in Host, and in Origin when it comes
// from script. Every request is checked, before anything else: Host, and
// Origin when present, must name the listen address, a loopback name when
// the gateway listens on loopback or on every interface, any IP address
// when it listens on every interface (an address literal cannot be
// rebound), or an allowed_hosts entry. Anything else gets 403 with reason
// "host not allowed" or "origin not allowed", audited like the other
// refusals at the edge.

// hostPolicy is the set of names requests may carry.
type hostPolicy struct {
	names     map[string]bool // lower-case host names or IP addresses, any port
	hostPorts map[string]bool // lower-case "host:port" entries of allowed_hosts
	loopback  bool            // any loopback address, and "localhost"
	anyIP     bool            // any IP address literal
}

// newHostPolicy derives the policy from the listen address and
// allowed_hosts (validated by validAllowedHost).
func newHostPolicy(listen string, allowed []string) *hostPolicy {
	p := &hostPolicy{names: map[string]bool{}, hostPorts: map[string]bool{}}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	switch ip, err := netip.ParseAddr(host); {
	case host == "":
		p.loopback, p.anyIP = true, true
	case err == nil && ip.IsUnspecified():
		p.loopback, p.anyIP = true, true
	case err == nil && ip.IsLoopback():
		p.loopback = true
		p.names[ip.Unmap().String()] = true
	case err == nil:
		p.names[ip.Unmap().String()] = true
	case strings.EqualFold(host, "localhost"):
		p.loopback = true
	default:
		p.names[strings.ToLower(host)] = true
	}
	for _, a := range allowed {
		a = strings.ToLower(a)
		if _, _, err := net.SplitHostPort(a); err == nil {
			p.hostPorts[a] = true
		} else {
			p.names[strings.Trim(a, "[]")] = true
		}
	}
	return p
}

// allows reports whether hostport (a Host header, or the host of an
// Origin) is one the gateway answers to.
func (p *hostPolicy) allows(hostport string) bool {
	hostport = strings.ToLower(hostport)
	if p.hostPorts[hostport] {
		return true
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	if host == "" {
		return false
	}
	if p.names[host] {
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.anyIP || p.loopback && ip.IsLoopback() || p.names[ip.Unmap().String()]
	}
	return p.loopback && host == "localhost"
}

// check returns the refusal of r, nil if its Host and Origin are allowed.
func (p *hostPolicy) check(r *http.Request) *edge.Error {
	if !p.allows(r.Host) {
		return edge.Errorf(http.StatusForbidden, gatewayapi.ReasonHostNotAllowed,
			"Host %q is not this gateway's listen address or an allowed_hosts entry", clip(r.Host))
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || !p.allows(u.Host) {
		return edge.Errorf(http.StatusForbidden, gatewayapi.ReasonOriginNotAllowed,
			"Origin %q is not this gateway's listen address or an allowed_hosts entry", clip(origin))
	}
	return nil
}

// checkHost refuses requests that fail the host policy (see above).
func (s *Server) checkHost(next http.Handler) http.Handler {
	p := newHostPolicy(s.cfg.Listen, s.cfg.AllowedHosts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := p.check(r); e != nil {
			s.auditTokenRefusal(r, e.Reason)
			s.fail(w, r, e)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// validAllowedHost checks one allowed_hosts entry: a host name, an IP
// address, or either with a port; no scheme, path or wildcard.
func validAllowedHost(h string) error {
	host := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return fmt.Errorf("%q: bad port", h)
		}
		host = hh
	}
	host = strings.Trim(host, "[]")
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if host == "" || len(host) > 253 || strings.Trim(strings.ToLower(host), "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
		return fmt.Errorf("%q is not a host name, IP address or host:port", h)
	}
	return nil
}
