// Package mcpbridge relays one MCP session between a local connection (the
// stdio of a desktop MCP client) and a remote MCP server over the
// streamable HTTP transport, message for message: requests, responses and
// notifications in both directions pass through unchanged, so every MCP
// feature the two ends agree on (tools, resources, prompts, logging,
// progress, elicitation, sampling, list-changed notifications) works without
// the bridge knowing it. Deciding whether the remote end deserves the
// traffic (attestation) is the caller's job, done before Run.
package mcpbridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gatewayapi"
)

// MaxMessageSize caps one message (a JSON body or one SSE event) from the
// remote server.
const MaxMessageSize = 8 << 20

// CodeGateway is the JSON-RPC error code the bridge answers a request with
// when the remote server could not be reached or refused the HTTP request
// (for example 401 for a bad token). It is in the implementation-defined
// server error range.
const CodeGateway = -32001

// CodeNotConnected is the JSON-RPC error code of every answer Refuse gives,
// and of the answers after a refused initialize: the bridge has no session
// with the remote server.
const CodeNotConnected = -32002

// Streamable HTTP header names (MCP specification, 2025-06-18 and later).
const (
	headerSessionID       = "Mcp-Session-Id"
	headerProtocolVersion = "Mcp-Protocol-Version"
	headerLastEventID     = "Last-Event-ID"
)

// Options configure a bridge.
type Options struct {
	// Endpoint is the remote MCP endpoint, e.g. https://host:8443/mcp.
	// Required.
	Endpoint string
	// HTTP is the client for every request; its transport decides whom to
	// trust. Required.
	HTTP *http.Client
	// Token, if non-empty, is sent as "Authorization: Bearer" on every
	// request to the remote server, and never to anyone else.
	Token string
	// AfterInitialize, if non-nil, runs once the remote server has answered
	// initialize, with the session id it assigned ("" if none), before the
	// answer reaches the local client. An error stops the bridge: the local
	// client gets an error for initialize and Run returns the error.
	AfterInitialize func(ctx context.Context, sessionID string) error
	// BeforeStateless, if non-nil, runs once, before the first request of
	// a local client of the stateless protocol (MCP 2026-07-28 or later:
	// no initialize, the version in each request's _meta) is relayed, with
	// that version. An error stops the bridge as for AfterInitialize.
	BeforeStateless func(ctx context.Context, version string) error
	// Logf receives diagnostics. If nil, they are dropped.
	Logf func(format string, args ...any)
	// Pay, if set, pays for a tools/call answered with an x402
	// payment-required result and sends the call once more with the
	// payment (pay.go). If nil, such results reach the local client as
	// they are.
	Pay PayFunc
}

// bridge is the state of one Run.
type bridge struct {
	opts  *Options
	local mcp.Connection

	mu              sync.Mutex
	sessionID       string
	protocolVersion string

	statelessReady bool // BeforeStateless ran (Run's goroutine only)

	paramBindings map[string][]paramBinding // tool → its Mcp-Param-* marks (paramheaders.go), under mu

	wg sync.WaitGroup
}

// Run relays between local and the remote server until local reaches end of
// input (then it ends the remote session and returns nil) or ctx is done.
//
// When initialize fails (the server is unreachable or refuses the HTTP
// request, e.g. 401 for a bad token, or AfterInitialize fails), Run answers
// the local client as Refuse does, so the client shows the reason rather
// than a closed connection, and then returns an error wrapping ErrRefused.
func Run(ctx context.Context, local mcp.Connection, opts *Options) error {
	if opts == nil || opts.Endpoint == "" || opts.HTTP == nil {
		return errors.New("mcpbridge: Endpoint and HTTP are required")
	}
	ctx, cancel := context.WithCancel(ctx)
	b := &bridge{opts: opts, local: local}
	defer func() {
		cancel()
		b.wg.Wait()
	}()
	for {
		msg, err := local.Read(ctx)
		if err != nil {
			b.closeSession()
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("mcpbridge: reading local client: %w", err)
		}
		req, isReq := msg.(*jsonrpc.Request)
		switch {
		case isReq && req.IsCall() && req.Method == "initialize":
			// Synchronous: the session id and protocol version must be known
			// before anything else is sent.
			if err := b.initialize(ctx, req); err != nil {
				b.closeSession()
				serveRefusal(ctx, local, err.Error(), req)
				return fmt.Errorf("mcpbridge: %w: %w", ErrRefused, err)
			}
		case isReq && req.IsCall() && !b.statelessReady && statelessVersion(req) != "":
			// The first request of a stateless client: synchronous, as
			// initialize is, so that nothing is relayed before the hook.
			if h := b.opts.BeforeStateless; h != nil {
				if err := h(ctx, statelessVersion(req)); err != nil {
					serveRefusal(ctx, local, err.Error(), req)
					return fmt.Errorf("mcpbridge: %w: %w", ErrRefused, err)
				}
			}
			b.statelessReady = true
			b.wg.Go(func() { b.post(ctx, req) })
		case isReq && req.IsCall():
			// Calls may take long (a confirmation gate holds a call until a
			// person decides), so each runs on its own.
			b.wg.Go(func() { b.post(ctx, req) })
		default:
			// Notifications and responses keep their order.
			b.post(ctx, msg)
			if isReq && req.Method == "notifications/initialized" {
				b.wg.Go(func() { b.standalone(ctx) })
			}
		}
	}
}

func (b *bridge) logf(format string, args ...any) {
	if b.opts.Logf != nil {
		b.opts.Logf(format, args...)
	}
}

// initialize relays the local client's initialize. It returns an error,
// having answered nothing, when the server could not be reached, refused the
// request or AfterInitialize failed.
func (b *bridge) initialize(ctx context.Context, req *jsonrpc.Request) error {
	var answer *jsonrpc.Response
	failure := b.send(ctx, req, func(m jsonrpc.Message) {
		if r, ok := m.(*jsonrpc.Response); ok && r.ID == req.ID {
			answer = r
			var res struct {
				ProtocolVersion string `json:"protocolVersion"`
			}
			if json.Unmarshal(r.Result, &res) == nil {
				b.mu.Lock()
				b.protocolVersion = res.ProtocolVersion
				b.mu.Unlock()
			}
			return
		}
		b.write(ctx, m)
	})
	if failure != "" {
		return errors.New(failure)
	}
	if answer == nil {
		return nil
	}
	if answer.Error != nil {
		// The server's own JSON-RPC answer (e.g. an unsupported protocol
		// version): pass it on.
		b.write(ctx, answer)
		return nil
	}
	if b.opts.AfterInitialize != nil {
		b.mu.Lock()
		sid := b.sessionID
		b.mu.Unlock()
		if err := b.opts.AfterInitialize(ctx, sid); err != nil {
			return err
		}
	}
	b.write(ctx, answer)
	return nil
}

// post sends msg and relays whatever the server answers to the local client.
func (b *bridge) post(ctx context.Context, msg jsonrpc.Message) {
	if r, ok := msg.(*jsonrpc.Request); ok && b.opts.Pay != nil && r.IsCall() && r.Method == "tools/call" && !paying(r) {
		b.postPaying(ctx, r)
		return
	}
	b.send(ctx, msg, func(m jsonrpc.Message) { b.write(ctx, m) })
}

func (b *bridge) write(ctx context.Context, m jsonrpc.Message) {
	if err := b.local.Write(ctx, m); err != nil && ctx.Err() == nil {
		b.logf("writing to local client: %v", err)
	}
}

func errorResponse(id jsonrpc.ID, msg string) *jsonrpc.Response {
	return &jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: CodeGateway, Message: msg}}
}

func (b *bridge) newRequest(ctx context.Context, method string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.opts.Endpoint, r)
	if err != nil {
		return nil, err
	}
	if b.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+b.opts.Token)
	}
	b.mu.Lock()
	if b.sessionID != "" {
		req.Header.Set(headerSessionID, b.sessionID)
	}
	if b.protocolVersion != "" {
		req.Header.Set(headerProtocolVersion, b.protocolVersion)
	}
	b.mu.Unlock()
	return req, nil
}

// send POSTs msg and hands each message of the answer to deliver. When msg
// is a call and no answer to it arrives (HTTP or network failure), the
// local client gets an error response instead, so it never waits forever,
// and send returns that error's text.
func (b *bridge) send(ctx context.Context, msg jsonrpc.Message, deliver func(jsonrpc.Message)) (failure string) {
	var callID jsonrpc.ID
	isCall := false
	if r, ok := msg.(*jsonrpc.Request); ok && r.IsCall() {
		callID, isCall = r.ID, true
	}
	answered := false
	fail := func(format string, args ...any) {
		text := fmt.Sprintf(format, args...)
		if isCall && !answered {
			failure = text
			deliver(errorResponse(callID, text))
			return
		}
		b.logf("%s", text)
	}
	data, err := jsonrpc.EncodeMessage(msg)
	if err != nil {
		fail("gateway: encoding message: %v", err)
		return
	}
	req, err := b.newRequest(ctx, http.MethodPost, data)
	if err != nil {
		fail("gateway: %v", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if r, ok := msg.(*jsonrpc.Request); ok {
		if v := statelessVersion(r); v != "" {
			// A stateless request names its version itself; the HTTP
			// headers must match it and name its method (and tool,
			// prompt or resource).
			req.Header.Set(headerProtocolVersion, v)
			req.Header.Set("Mcp-Method", r.Method)
			if name := requestName(r); name != "" {
				req.Header.Set("Mcp-Name", name)
				if r.Method == "tools/call" {
					for k, v := range b.paramHeaders(name, r.Params) {
						req.Header.Set(k, v)
					}
				}
			}
		}
	}
	resp, err := b.opts.HTTP.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			fail("gateway unreachable: %v", err)
		}
		return
	}
	defer resp.Body.Close()
	if sid := resp.Header.Get(headerSessionID); sid != "" {
		b.mu.Lock()
		if b.sessionID == "" {
			b.sessionID = sid
		}
		b.mu.Unlock()
	}
	listsTools := false
	if r, ok := msg.(*jsonrpc.Request); ok && r.Method == "tools/list" {
		listsTools = true
	}
	relay := func(m jsonrpc.Message) {
		if r, ok := m.(*jsonrpc.Response); ok && isCall && r.ID == callID {
			answered = true
			if listsTools && r.Error == nil {
				b.learnTools(r.Result)
			}
		}
		deliver(m)
	}
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusNoContent:
	case resp.StatusCode != http.StatusOK:
		fail("gateway refused the request: %s", httpErrorText(resp))
		return
	case strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"):
		if _, err := readSSE(resp.Body, relay); err != nil && ctx.Err() == nil {
			fail("gateway: reading event stream: %v", err)
			return
		}
	default:
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxMessageSize+1))
		if err != nil || len(body) > MaxMessageSize {
			fail("gateway: reading answer: %v", errOr(err, "too large"))
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			break
		}
		m, err := jsonrpc.DecodeMessage(body)
		if err != nil {
			fail("gateway: bad answer: %v", err)
			return
		}
		relay(m)
	}
	if isCall && !answered && ctx.Err() == nil {
		fail("gateway closed the stream without answering")
	}
	return failure
}

func errOr(err error, s string) any {
	if err != nil {
		return err
	}
	return s
}

// httpErrorText renders a refusal: status and the {"error": ...} message.
func httpErrorText(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e gatewayapi.ErrorBody
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return fmt.Sprintf("%s: %s", resp.Status, e.Error)
	}
	return resp.Status
}

// standalone keeps the GET event stream open for server-initiated messages
// (list-changed notifications, requests outside a call), reconnecting with
// Last-Event-ID a few times when it drops.
func (b *bridge) standalone(ctx context.Context) {
	lastID := ""
	for attempt := 0; attempt < 5 && ctx.Err() == nil; attempt++ {
		req, err := b.newRequest(ctx, http.MethodGet, nil)
		if err != nil {
			return
		}
		req.Header.Set("Accept", "text/event-stream")
		if lastID != "" {
			req.Header.Set(headerLastEventID, lastID)
		}
		resp, err := b.opts.HTTP.Do(req)
		if err != nil {
			b.logf("gateway event stream: %v", err)
		} else {
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				// 405: the server offers no standalone stream; fine.
				if resp.StatusCode != http.StatusMethodNotAllowed {
					b.logf("gateway event stream: %s", resp.Status)
				}
				return
			}
			id, err := readSSE(resp.Body, func(m jsonrpc.Message) { b.write(ctx, m) })
			resp.Body.Close()
			if id != "" {
				lastID = id
			}
			if err != nil && ctx.Err() == nil {
				b.logf("gateway event stream: %v", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(attempt+1) * 500 * time.Millisecond):
		}
	}
}

// closeSession ends the remote session (DELETE), best effort.
func (b *bridge) closeSession() {
	b.mu.Lock()
	sid := b.sessionID
	b.mu.Unlock()
	if sid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := b.newRequest(ctx, http.MethodDelete, nil)
	if err != nil {
		return
	}
	if resp, err := b.opts.HTTP.Do(req); err == nil {
		resp.Body.Close()
	}
}

// readSSE reads a server-sent event stream, decoding each event's data as
// one JSON-RPC message, until the stream ends. It returns the last event id.
func readSSE(r io.Reader, deliver func(jsonrpc.Message)) (lastID string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxMessageSize)
	var data []byte
	dispatch := func() error {
		if len(data) == 0 {
			return nil
		}
		m, err := jsonrpc.DecodeMessage(data)
		data = data[:0]
		if err != nil {
			return fmt.Errorf("bad event: %w", err)
		}
		deliver(m)
		return nil
	}
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if err := dispatch(); err != nil {
				return lastID, err
			}
		case field == "data":
			if len(data) > 0 {
				data = append(data, '\n')
			}
			if len(data)+len(value) > MaxMessageSize {
				return lastID, errors.New("event too large")
			}
			data = append(data, value...)
		case field == "id":
			lastID = value
		}
	}
	if err := sc.Err(); err != nil {
		return lastID, err
	}
	return lastID, dispatch()
}

// ProtocolStateless is the first MCP revision without initialize or
// sessions.
const ProtocolStateless = "2026-07-28"

// statelessVersion returns the protocol version a request of the stateless
// protocol carries in its _meta, "" for any other message.
func statelessVersion(r *jsonrpc.Request) string {
	if len(r.Params) == 0 {
		return ""
	}
	var p struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if json.Unmarshal(r.Params, &p) != nil {
		return ""
	}
	var v string
	if json.Unmarshal(p.Meta["io.modelcontextprotocol/protocolVersion"], &v) != nil || v < ProtocolStateless {
		return ""
	}
	return v
}

// requestName is what the Mcp-Name header of a stateless request carries:
// the tool or prompt name, or the resource URI.
func requestName(r *jsonrpc.Request) string {
	var p struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
	}
	switch r.Method {
	case "tools/call", "prompts/get":
		json.Unmarshal(r.Params, &p)
		return p.Name
	case "resources/read":
		json.Unmarshal(r.Params, &p)
		return p.URI
	}
	return ""
}
