package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// postCall is forward's path for a call on the fast path (fastpath.go) to
// an upstream that speaks the stateless protocol over streamable HTTP. Such
// a call is one POST standing alone, so the gateway sends it itself rather
// than through the SDK's client, whose JSON-RPC connection (a writer, a
// reader of the answer's stream, a hand-off between them) costs about 100
// µs a call here (docs/BENCHMARKS.md). It sends what the SDK's client
// would — the canonical arguments, the 2026-07-28 _meta triple, the
// Mcp-Method and Mcp-Name headers, the upstream's configured headers — with
// two differences, both true to the caller: it declares the caller's own
// client capabilities, and asks for no log messages (the caller asked for
// none). Its answer, plain JSON or an event stream, is read for the
// response to this request; notifications on the stream are dropped (the
// caller asked for none). A result that asks for input goes to the
// caller as an input round (inputround.go); the caller's retry carries its
// responses and the upstream's state back. Cancellation and call_timeout
// end the POST, and with it the upstream's handling of it.
func (s *Server) postCall(ctx context.Context, hc *http.Client, endpoint, version string, c *toolCall, args json.RawMessage, round *inputRound) (*mcp.CallToolResult, error) {
	tool := c.tool.def.Name
	caps := round.caps
	if caps == nil {
		caps = map[string]any{}
	}
	params, err := json.Marshal(struct {
		Name           string          `json:"name"`
		Arguments      json.RawMessage `json:"arguments"`
		Meta           mcp.Meta        `json:"_meta"`
		InputResponses json.RawMessage `json:"inputResponses,omitempty"`
		RequestState   string          `json:"requestState,omitempty"`
	}{tool, args, mcp.Meta{
		mcp.MetaKeyProtocolVersion:    version,
		mcp.MetaKeyClientInfo:         upstreamClientInfo,
		mcp.MetaKeyClientCapabilities: caps,
	}, round.responses, round.state})
	if err != nil {
		return nil, err
	}
	id, err := jsonrpc.MakeID(float64(s.postIDs.Add(1)))
	if err != nil {
		return nil, err
	}
	body, err := jsonrpc.EncodeMessage(&jsonrpc.Request{ID: id, Method: "tools/call", Params: params})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", version)
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", tool)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sending %q: %w", "tools/call", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("sending %q: upstream answered %s: %s", "tools/call", resp.Status, strings.TrimSpace(string(b)))
	}
	answer, err := readAnswer(resp, id)
	if err != nil {
		return nil, fmt.Errorf("calling %q: %w", "tools/call", err)
	}
	if answer.Error != nil {
		return nil, fmt.Errorf("calling %q: %w", "tools/call", answer.Error)
	}
	var res mcp.CallToolResult
	if err := json.Unmarshal(answer.Result, &res); err != nil {
		return nil, fmt.Errorf("calling %q: malformed result: %w", "tools/call", err)
	}
	if res.InputRequests != nil || res.NeedsInput() {
		if len(res.InputRequests) == 0 || len(res.Content) > 0 || res.StructuredContent != nil {
			return nil, errors.New("multi round-trip: the upstream asked for input and named none, or sent content with it")
		}
		// The caller answers the round itself (inputround.go).
		sealed, err := s.sealState(res.RequestState, c.principal.ChainID, c.tool.exposed, c.argsHash)
		if err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{Meta: res.Meta, InputRequests: res.InputRequests, RequestState: sealed}, nil
	}
	return &res, nil
}

// upstreamClientInfo is the gateway's name to upstreams (as upstream.Dial
// gives it to the SDK's client).
var upstreamClientInfo = &mcp.Implementation{Name: "chatmcp-gateway", Version: "v1"}

// readAnswer returns the response to request id in resp's body: a JSON
// message, or the first response with that id on an event stream. Each
// message is at most maxUpstreamAnswer bytes.
func readAnswer(resp *http.Response, id jsonrpc.ID) (*jsonrpc.Response, error) {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamAnswer+1))
		if err != nil {
			return nil, err
		}
		if len(b) > maxUpstreamAnswer {
			return nil, errors.New("answer too large")
		}
		return responseTo(b, id)
	case "text/event-stream":
		return streamAnswer(resp.Body, id)
	}
	return nil, fmt.Errorf("answer of type %q", resp.Header.Get("Content-Type"))
}

// streamAnswer reads an event stream until the response to id.
func streamAnswer(body io.Reader, id jsonrpc.ID) (*jsonrpc.Response, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 4096), maxUpstreamAnswer+len("data: \r\n"))
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) > 0 {
				if r, err := responseTo(data, id); err == nil {
					return r, nil
				} else if !errors.Is(err, errNotTheResponse) {
					return nil, err
				}
			}
			data = data[:0]
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))
			if len(data) > 0 {
				data = append(data, '\n')
			}
			if len(data)+len(v) > maxUpstreamAnswer {
				return nil, errors.New("answer too large")
			}
			data = append(data, v...)
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return nil, errors.New("answer too large")
	case err != nil:
		return nil, err
	}
	return nil, errors.New("the upstream's stream ended without the response")
}

// errNotTheResponse is a message on the stream other than the response
// awaited (a notification): skipped.
var errNotTheResponse = errors.New("not the response")

// responseTo decodes b as the response to id.
func responseTo(b []byte, id jsonrpc.ID) (*jsonrpc.Response, error) {
	msg, err := jsonrpc.DecodeMessage(b)
	if err != nil {
		return nil, fmt.Errorf("malformed answer: %w", err)
	}
	r, ok := msg.(*jsonrpc.Response)
	if !ok || r.ID != id {
		return nil, errNotTheResponse
	}
	return r, nil
}
