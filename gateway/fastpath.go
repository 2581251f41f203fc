package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/authz"
)

// The fast path. The SDK's stateless handler builds a whole server session
// (a JSON-RPC connection, its goroutines, its initialization state) for
// every 2026-07-28 request and tears it down after the answer; for the
// commonest request of an agent, a tools/call of a read-only tool, that is
// most of what the gateway costs beyond the upstream's round trip
// (docs/BENCHMARKS.md). fastCall serves exactly that request without it:
//
//   - it decodes the message with the SDK's own JSON-RPC decoder and takes
//     only a single tools/call whose params hold nothing but name,
//     arguments and the 2026-07-28 _meta triple (protocol version, client
//     info, client capabilities), with the Mcp-Method and Mcp-Name headers
//     the SDK requires and matching;
//   - the tool must be exposed, enabled, read-only (no person is asked),
//     unpaid, and declare no Mcp-Param-* headers;
//   - the client asks for nothing to be sent before the answer (no progress
//     token, no log level), so a plain application/json answer says all.
//
// The request then goes through exactly what the SDK's handler would run:
// the middleware's name refusal (refusal.go) and callTool (pipeline.go),
// the whole call path with its audit, on a context cancelled when the HTTP
// request ends or the gateway stops (cancel.go). The answer is encoded by
// the SDK's encoder, with the result post-processing of the SDK's server
// (content never null, resultType "complete"). Every other request, and any
// request this code is not sure about, goes to the SDK's handler with its
// body untouched; fastpath_test.go holds the two paths' answers equal.

// fastCall serves r on the fast path and reports true, or reports false
// with r (and its body) as it came, for the SDK's handler.
func (s *Server) fastCall(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.NoFastPath || r.Method != http.MethodPost || r.Header.Get("Mcp-Protocol-Version") != ProtocolStateless ||
		r.Header.Get("Mcp-Method") != "tools/call" || r.Header.Get("Mcp-Name") == "" || !fastHeaders(r) {
		return false
	}
	p, _ := r.Context().Value(principalKey).(*authz.Principal)
	if p == nil {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFastBody+1))
	if err != nil || len(body) > maxFastBody {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	id, params, round, ok := fastRequest(body, r.Header.Get("Mcp-Name"))
	if !ok || !s.fastTool(params.Name) {
		return false
	}
	s.fastCalls.Add(1)
	round.caps = params.Meta[mcp.MetaKeyClientCapabilities]

	req := &mcp.CallToolRequest{Params: params, Extra: &mcp.RequestExtra{
		TokenInfo: &auth.TokenInfo{UserID: p.ChainID, Expiration: p.Expires, Extra: map[string]any{"principal": p}},
		Header:    r.Header,
	}}
	ctx, done := s.requestContext(r.Context(), req)
	defer done()
	ctx = context.WithValue(ctx, fastKey{}, round)
	var res *mcp.CallToolResult
	if err = s.refuseCallName(ctx, p, params); err == nil {
		if err = s.openRound(ctx, p, params, round); err == nil {
			res, err = s.callTool(ctx, req)
		}
	}
	resp := &jsonrpc.Response{ID: id, Error: err}
	if err == nil {
		if resp.Result, err = completeResult(res, s.impl); err != nil {
			resp.Result, resp.Error = nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
		}
	}
	data, err := jsonrpc.EncodeMessage(resp)
	if err != nil {
		s.log.Error("fast path: encoding the answer", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(data)
	return true
}

// fastKey marks the context of a call on the fast path with its
// *inputRound: forward may post it to a stateless upstream itself
// (call_forward_post.go).
type fastKey struct{}

// fastRound returns the input round of a call on the fast path, nil for
// any other call.
func fastRound(ctx context.Context) *inputRound {
	r, _ := ctx.Value(fastKey{}).(*inputRound)
	return r
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// fastHeaders reports whether r's Content-Type and Accept are what the
// SDK's handler requires of a POST (its refusals are its own to make).
func fastHeaders(r *http.Request) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return false
	}
	var jsonOK, streamOK bool
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			switch mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part)); mt {
			case "application/json":
				jsonOK = true
			case "text/event-stream":
				streamOK = true
			case "*/*", "application/*":
				jsonOK = true
			}
		}
	}
	return jsonOK && streamOK
}

// fastRequest decodes body as a fast-path tools/call of the tool the
// Mcp-Name header names: its id, params and input round (the retry of an
// upstream's input_required round, call_forward_post.go), or false.
func fastRequest(body []byte, nameHeader string) (jsonrpc.ID, *mcp.CallToolParamsRaw, *inputRound, bool) {
	msg, err := jsonrpc.DecodeMessage(body)
	if err != nil {
		return jsonrpc.ID{}, nil, nil, false
	}
	req, ok := msg.(*jsonrpc.Request)
	if !ok || !req.IsCall() || req.Method != "tools/call" {
		return jsonrpc.ID{}, nil, nil, false
	}
	// Exactly these keys, spelled exactly so and each once: the SDK's
	// decoder and this one then read the same fields.
	var fields map[string]json.RawMessage
	if !uniqueKeys(req.Params) || json.Unmarshal(req.Params, &fields) != nil {
		return jsonrpc.ID{}, nil, nil, false
	}
	var params mcp.CallToolParamsRaw
	round := &inputRound{}
	for k, v := range fields {
		switch k {
		case "name":
			if json.Unmarshal(v, &params.Name) != nil {
				return jsonrpc.ID{}, nil, nil, false
			}
		case "arguments":
			params.Arguments = v
		case "_meta":
			if !uniqueKeys(v) || json.Unmarshal(v, &params.Meta) != nil || !fastMetaOK(params.Meta) {
				return jsonrpc.ID{}, nil, nil, false
			}
		case "requestState":
			// Only the gateway's own seal of an upstream's state; any other
			// (a confirmation round's approval id) is the SDK path's.
			if json.Unmarshal(v, &round.sealed) != nil || !strings.HasPrefix(round.sealed, sealedStatePrefix) {
				return jsonrpc.ID{}, nil, nil, false
			}
		case "inputResponses":
			var m mcp.InputResponseMap
			if !uniqueKeys(v) || json.Unmarshal(v, &m) != nil {
				return jsonrpc.ID{}, nil, nil, false
			}
			round.responses = v
		default:
			return jsonrpc.ID{}, nil, nil, false
		}
	}
	if params.Name == "" || params.Name != nameHeader || params.Meta[mcp.MetaKeyProtocolVersion] != ProtocolStateless ||
		(round.sealed == "") != (round.responses == nil) {
		return jsonrpc.ID{}, nil, nil, false
	}
	return req.ID, &params, round, true
}

// uniqueKeys reports whether raw is a JSON object that names no key twice
// at its top level (compared after unescaping); what lies deeper is
// judged where it is read (the arguments by decodeArgs).
func uniqueKeys(raw json.RawMessage) bool {
	dec := jsontext.NewDecoder(bytes.NewReader(raw), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return false
	}
	seen := map[string]bool{}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil || tok.Kind() != '"' || seen[tok.String()] {
			return false
		}
		seen[tok.String()] = true
		if dec.SkipValue() != nil {
			return false
		}
	}
	return true
}

// fastMetaOK reports whether meta holds only the 2026-07-28 triple, as
// the SDK requires it (shared.go, validateRequestMeta): the client's
// capabilities always, its info optionally, each an object of its type.
func fastMetaOK(meta mcp.Meta) bool {
	if _, ok := meta[mcp.MetaKeyClientCapabilities]; !ok {
		return false
	}
	for k, v := range meta {
		var into any
		switch k {
		case mcp.MetaKeyProtocolVersion:
			continue
		case mcp.MetaKeyClientInfo:
			into = &mcp.Implementation{}
		case mcp.MetaKeyClientCapabilities:
			into = &mcp.ClientCapabilities{}
		default:
			return false
		}
		b, err := json.Marshal(v)
		if _, isObject := v.(map[string]any); !isObject || err != nil || json.Unmarshal(b, into) != nil {
			return false
		}
	}
	return true
}

// fastTool reports whether the exposed tool name may be called on the fast
// path: enabled, read-only, unpaid, without Mcp-Param-* headers.
func (s *Server) fastTool(name string) bool {
	s.mu.RLock()
	t := s.tools[name]
	s.mu.RUnlock()
	return t != nil && t.enabled && t.readOnly && !t.paramHeaders && priceOf(t) == nil
}

// hasParamHeaders reports whether def's input schema declares arguments
// carried in Mcp-Param-* headers (x-mcp-header), which the SDK's handler
// checks against the body.
func hasParamHeaders(def *mcp.Tool) bool {
	b, err := json.Marshal(def.InputSchema)
	return err != nil || bytes.Contains(b, []byte(`"x-mcp-header"`))
}

// completeResult encodes res as the SDK's server (Server.callTool,
// handleMultiRoundTripResult, annotateServerInfo) answers a 2026-07-28
// client: content never null, resultType "complete", or "input_required"
// for a result that asks for input, which may then carry no content, and
// the server's identity (impl) in _meta unless the result has one.
func completeResult(res *mcp.CallToolResult, impl *mcp.Implementation) (json.RawMessage, error) {
	if res == nil {
		return json.RawMessage("null"), nil
	}
	if _, ok := res.Meta[mcp.MetaKeyServerInfo]; !ok {
		r := *res
		r.Meta = make(mcp.Meta, len(res.Meta)+1)
		for k, v := range res.Meta {
			r.Meta[k] = v
		}
		r.Meta[mcp.MetaKeyServerInfo] = impl
		res = &r
	}
	rt := `"complete"`
	if res.InputRequests != nil {
		// postCall passes on no content with input requests.
		rt = `"input_required"`
	} else if res.Content == nil {
		r := *res
		r.Content = []mcp.Content{}
		res = &r
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	fields["resultType"] = json.RawMessage(rt)
	return json.Marshal(fields)
}
