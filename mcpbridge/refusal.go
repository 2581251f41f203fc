package mcpbridge

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ErrRefused is wrapped by Run's error when the session never started:
// the remote server could not be reached or refused initialize.
var ErrRefused = errors.New("session refused")

// refusalName is the serverInfo name of the local stand-in server.
const refusalName = "chatmcp-connect (not connected)"

// Refuse serves local as an MCP server that connects nowhere, for a bridge
// that will not run (the remote server failed attestation, the token is
// malformed): MCP clients show a closed connection as just "Connection
// closed", so instead Refuse completes the initialize handshake (with reason
// as its instructions), sends reason as an error log message, and answers
// every request but ping with a JSON-RPC error (CodeNotConnected) whose
// message is reason. It returns when local reaches end of input or ctx is
// done. Nothing reaches any remote server.
func Refuse(ctx context.Context, local mcp.Connection, reason string) {
	serveRefusal(ctx, local, reason, nil)
}

// serveRefusal is Refuse, with the initialize request first already read.
func serveRefusal(ctx context.Context, local mcp.Connection, reason string, first *jsonrpc.Request) {
	answer := func(req *jsonrpc.Request) {
		var resp *jsonrpc.Response
		switch req.Method {
		case "initialize":
			var p struct {
				ProtocolVersion string `json:"protocolVersion"`
			}
			json.Unmarshal(req.Params, &p)
			res, _ := json.Marshal(map[string]any{
				"protocolVersion": p.ProtocolVersion,
				"capabilities":    map[string]any{"tools": map[string]any{}, "logging": map[string]any{}},
				"serverInfo":      map[string]any{"name": refusalName, "version": "0"},
				"instructions":    reason,
			})
			resp = &jsonrpc.Response{ID: req.ID, Result: res}
		case "ping":
			resp = &jsonrpc.Response{ID: req.ID, Result: json.RawMessage(`{}`)}
		default:
			resp = &jsonrpc.Response{ID: req.ID, Error: &jsonrpc.Error{Code: CodeNotConnected, Message: reason}}
		}
		local.Write(ctx, resp)
	}
	if first != nil {
		answer(first)
	}
	for {
		msg, err := local.Read(ctx)
		if err != nil {
			return
		}
		req, ok := msg.(*jsonrpc.Request)
		switch {
		case !ok:
		case req.IsCall():
			answer(req)
		case req.Method == "notifications/initialized":
			params, _ := json.Marshal(map[string]any{"level": "error", "logger": refusalName, "data": reason})
			local.Write(ctx, &jsonrpc.Request{Method: "notifications/message", Params: params})
		}
	}
}
