package gateway

import (
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/upstream"
)

// The gateway serves MCP clients of two generations at once, on one
// endpoint:
//
//   - 2025-06-18 and 2025-11-25 (and the older revisions go-sdk still
//     accepts): an initialize handshake opens a session (Mcp-Session-Id),
//     the client's capabilities are the session's, and the gateway may send
//     the client requests (elicitation) during a call;
//   - 2026-07-28: stateless. No initialize and no session: every request
//     carries the protocol version and the client's capabilities in its
//     _meta (and the MCP-Protocol-Version header), server/discover replaces
//     initialize, and a server that needs the client's input answers
//     input_required (multi-round-trip requests) instead of sending it a
//     request.
//
// byProtocol sends each request to the handler of its generation: a
// request with an Mcp-Session-Id, or without an MCP-Protocol-Version of
// 2026-07-28 or later, to the session (stateful) handler; any other to a
// stateless one. Both run the same *mcp.Server, middleware and tool
// handlers, so every check (token, names, pins, Cedar, confirmation,
// audit, redaction) is the same code on both.

// ProtocolStateless is the first MCP revision without sessions.
const ProtocolStateless = "2026-07-28"

// ProtocolVersions are the MCP revisions the gateway serves, newest first.
var ProtocolVersions = []string{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// byProtocol returns the handler that dispatches between the session
// handler stateful and a stateless handler of the same server.
func (s *Server) byProtocol(stateful http.Handler) http.Handler {
	stateless := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp }, &mcp.StreamableHTTPOptions{
		Stateless: true,
		// As for the session handler (http.go): TLS on an attested key and
		// a capability token on every request.
		DisableLocalhostProtection: true,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if statelessRequest(r) {
			if s.fastCall(w, r) {
				return
			}
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	})
}

// statelessRequest reports whether r is a 2026-07-28 (or later) request
// outside any session.
func statelessRequest(r *http.Request) bool {
	return r.Header.Get("Mcp-Session-Id") == "" && r.Header.Get("Mcp-Protocol-Version") >= ProtocolStateless
}

// statelessSession reports whether ss serves a request of the stateless
// protocol: the client's version came in the request's _meta, there is no
// session to send requests on, and input reaches the client only as an
// input_required result.
func statelessSession(ss *mcp.ServerSession) bool {
	if ss == nil || ss.ID() != "" {
		return false
	}
	ip := ss.InitializeParams()
	return ip != nil && ip.ProtocolVersion >= ProtocolStateless
}

// RoundTripClaimWindow is how long the decision on a stateless client's
// held call waits for the client's retry once it is made; then the call is
// forgotten (audited as abandoned) and a retry is refused.
const RoundTripClaimWindow = 2 * time.Minute

// dropExpiredStateless closes the per-token upstream connections of
// stateless clients whose layer-2 credentials are gone (their token
// expired): no session end would close them (housekeeping, every minute).
func (s *Server) dropExpiredStateless() {
	s.mu.RLock()
	ups := make([]*backend, 0, len(s.upstreams))
	for _, u := range s.upstreams {
		ups = append(ups, u)
	}
	s.mu.RUnlock()
	for _, u := range ups {
		u.pool.DropIf(func(k upstream.Key) bool { return k.Session == "" && s.creds.Get(k.Principal, "") == nil })
	}
}
