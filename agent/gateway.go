package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/internal/edge"
)

// Gateway opens MCP sessions to the gateway, one per grant token, over an
// HTTP client that verifies the gateway's RA-TLS certificate.
type Gateway struct {
	// URL is the gateway's base URL (https://…). Required.
	URL string
	// HTTPClient verifies the gateway (ratls.ClientConfig). Required.
	HTTPClient *http.Client
}

// ToolSession is one MCP session under one grant token. Its calls are made
// one at a time (a conversation's turns are sequential), so a held call's
// elicitation or progress notification belongs to the call in flight.
type ToolSession struct {
	cs *mcp.ClientSession

	mu      sync.Mutex
	onHeld  func(HeldCall) // of the call in flight; nil between calls
	notices map[string]bool
}

// HeldCall is what the gateway tells the caller of a call it holds for a
// person's approval: the approval id and, when it said so, the redacted
// arguments as text.
type HeldCall struct {
	ID        string
	Arguments string
}

// The gateway's words for a held call, in its elicitation message ("… with
// arguments {…} waits for approval ID …") and its progress notifications
// ("waiting for approval ID").
var (
	approvalIDRE   = regexp.MustCompile(`\bapproval ([0-9a-f]{32})\b`)
	approvalArgsRE = regexp.MustCompile(`with arguments (\{.*\}) waits for approval`)
)

// ApprovalMetaKey is a _meta key the gateway may set on its elicitation to
// name the approval id in a structured way; read before the message text.
const ApprovalMetaKey = "chatmcp/approval_id"

func parseHeld(msg string, meta map[string]any) (HeldCall, bool) {
	var h HeldCall
	if id, ok := meta[ApprovalMetaKey].(string); ok && envelope.ValidID(id) {
		h.ID = id
	} else if m := approvalIDRE.FindStringSubmatch(msg); m != nil {
		h.ID = m[1]
	} else {
		return h, false
	}
	if m := approvalArgsRE.FindStringSubmatch(msg); m != nil {
		h.Arguments = m[1]
	}
	return h, true
}

func (s *ToolSession) held(h HeldCall) {
	s.mu.Lock()
	fn := s.onHeld
	seen := s.notices[h.ID]
	s.notices[h.ID] = true
	s.mu.Unlock()
	if fn != nil && !seen {
		fn(h)
	}
}

// Open starts a session under token. The agent declares elicitation only
// to hear which approval a held call waits for: it always declines, so it
// never answers for the person its call is gated on.
func (g *Gateway) Open(ctx context.Context, token string) (*ToolSession, error) {
	hc := *g.HTTPClient
	hc.Transport = edge.BearerTransport(token, g.HTTPClient.Transport)
	s := &ToolSession{notices: map[string]bool{}}
	client := mcp.NewClient(&mcp.Implementation{Name: "chatmcp-agent", Version: "v1"}, &mcp.ClientOptions{
		Capabilities: &mcp.ClientCapabilities{},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			if h, ok := parseHeld(req.Params.Message, req.Params.Meta); ok {
				s.held(h)
			}
			return &mcp.ElicitResult{Action: "decline"}, nil
		},
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			if h, ok := parseHeld(req.Params.Message, nil); ok {
				s.held(h)
			}
		},
	})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: strings.TrimSuffix(g.URL, "/") + gatewayapi.PathMCP,
		HTTPClient: &hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("connecting to the gateway: %w", err)
	}
	s.cs = cs
	return s, nil
}

// Close ends the session.
func (s *ToolSession) Close() error { return s.cs.Close() }

// Tools lists the tools the session's token may see.
func (s *ToolSession) Tools(ctx context.Context) ([]*mcp.Tool, error) {
	var out []*mcp.Tool
	for t, err := range s.cs.Tools(ctx, nil) {
		if err != nil {
			return nil, fmt.Errorf("listing the gateway's tools: %w", err)
		}
		out = append(out, t)
	}
	return out, nil
}

// Call calls a tool with the exact argument bytes args. onHeld is called
// (once per approval id) when the gateway holds the call for a person.
func (s *ToolSession) Call(ctx context.Context, name string, args json.RawMessage, onHeld func(HeldCall)) (*mcp.CallToolResult, error) {
	return s.CallMeta(ctx, name, args, onHeld, nil)
}

// CallMeta is Call with meta as the call's _meta (a payment:
// x402.MetaPayment).
func (s *ToolSession) CallMeta(ctx context.Context, name string, args json.RawMessage, onHeld func(HeldCall), meta mcp.Meta) (*mcp.CallToolResult, error) {
	s.mu.Lock()
	s.onHeld = onHeld
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.onHeld = nil
		s.mu.Unlock()
	}()
	p := &mcp.CallToolParams{Meta: meta, Name: name, Arguments: args}
	p.SetProgressToken("agent-call")
	return s.cs.CallTool(ctx, p)
}
