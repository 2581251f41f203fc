package gateway

import (
	"context"
	"net/http"
	"strconv"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Cancellation. A request the gateway handles ends, and with it whatever it
// waits for (a person's decision, the upstream call, which then gets
// notifications/cancelled from the SDK's client), when any of these comes
// first:
//
//   - the client sends notifications/cancelled for it (the SDK cancels the
//     handler's context);
//   - the client goes away: the HTTP request that carried it (a POST whose
//     response stream the client was reading) ends before its answer. The
//     gateway keeps no event store, so such a stream cannot be resumed and
//     the answer could never be delivered;
//   - the gateway shuts down (Serve's context ends): every request still
//     running is cancelled before the sessions are closed, so shutdown
//     takes at most ShutdownTimeout.
//
// The SDK does not tell a handler which HTTP request carried its message,
// but it does pass that request's header (RequestExtra.Header). So every
// POST to /mcp gets a private header naming it, set by the gateway (any
// value a client sent is replaced), and the handler's context is tied to
// the context of the HTTP request it names.

// requestKeyHeader names the HTTP request that carried an MCP message. Only
// the gateway sets it.
const requestKeyHeader = "Chatmcp-Internal-Request"

// liveRequests are the HTTP requests to /mcp in progress, by key, and the
// context every MCP request handler is tied to until shutdown.
type liveRequests struct {
	mu   sync.Mutex
	next uint64
	byID map[string]context.Context

	once    sync.Once
	stop    context.Context
	stopAll context.CancelFunc
}

func (l *liveRequests) init() {
	l.once.Do(func() {
		l.byID = map[string]context.Context{}
		l.stop, l.stopAll = context.WithCancel(context.Background())
	})
}

// tagRequests names every request to next (see above) while it runs.
func (s *Server) tagRequests(next http.Handler) http.Handler {
	s.live.init()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := &s.live
		l.mu.Lock()
		l.next++
		key := strconv.FormatUint(l.next, 10)
		l.byID[key] = r.Context()
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			delete(l.byID, key)
			l.mu.Unlock()
		}()
		r.Header.Set(requestKeyHeader, key)
		next.ServeHTTP(w, r)
	})
}

// requestContext returns ctx, the handler's context of req, cancelled also
// when the HTTP request that carried req ends or the gateway shuts down.
func (s *Server) requestContext(ctx context.Context, req mcp.Request) (context.Context, context.CancelFunc) {
	s.live.init()
	ctx, cancel := context.WithCancel(ctx)
	stops := []func() bool{context.AfterFunc(s.live.stop, cancel)}
	if extra := req.GetExtra(); extra != nil && extra.Header != nil {
		s.live.mu.Lock()
		hctx := s.live.byID[extra.Header.Get(requestKeyHeader)]
		s.live.mu.Unlock()
		if hctx != nil {
			stops = append(stops, context.AfterFunc(hctx, cancel))
		}
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// cancelRequests cancels every MCP request in progress (shutdown).
func (s *Server) cancelRequests() {
	s.live.init()
	s.live.stopAll()
}
