package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// FuzzFastRequest feeds the fast path's decoder arbitrary bodies. What it
// takes must be what the SDK's decoding of the same message reads (the
// name the Mcp-Name header names, the same arguments), with params of only
// name, arguments and the 2026-07-28 _meta triple, each key once.
func FuzzFastRequest(f *testing.F) {
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up_echo","arguments":{"text":"hi"},` + meta + `}}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"up_echo",` + meta + `}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up_echo","name":"up_leak",` + meta + `}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"up_echo",` + meta + `}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up_echo","task":{},` + meta + `}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up_echo","requestState":"chatmcp-input.v1.AAAA","inputResponses":{"n":{"action":"accept","content":{"a":1}}},` + meta + `}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up_echo",` + meta + `}}]`,
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"up_echo",` + meta + `}}`,
	} {
		f.Add([]byte(body), "up_echo")
	}
	f.Fuzz(func(t *testing.T, body []byte, name string) {
		id, params, round, ok := fastRequest(body, name)
		if !ok {
			return
		}
		if params.Name != name || params.Name == "" {
			t.Fatalf("took %q for Mcp-Name %q", params.Name, name)
		}
		if !id.IsValid() {
			t.Fatal("took a message without an id")
		}
		if (round.sealed == "") != (round.responses == nil) || round.sealed != "" && !strings.HasPrefix(round.sealed, sealedStatePrefix) {
			t.Fatalf("took an input round %+v", round)
		}
		for k := range params.Meta {
			switch k {
			case mcp.MetaKeyProtocolVersion, mcp.MetaKeyClientInfo, mcp.MetaKeyClientCapabilities:
			default:
				t.Fatalf("took _meta key %q", k)
			}
		}
		if _, ok := params.Meta[mcp.MetaKeyClientCapabilities]; !ok {
			t.Fatal("took a request without the client's capabilities")
		}
		msg, err := jsonrpc.DecodeMessage(body)
		if err != nil {
			t.Fatalf("the SDK refuses what the fast path took: %v", err)
		}
		req := msg.(*jsonrpc.Request)
		var sdk mcp.CallToolParamsRaw
		if err := json.Unmarshal(req.Params, &sdk); err != nil {
			t.Fatalf("params the SDK's type refuses: %v", err)
		}
		if sdk.Name != params.Name || !bytes.Equal(bytes.TrimSpace(sdk.Arguments), bytes.TrimSpace(params.Arguments)) {
			t.Fatalf("the fast path read %q %s, the SDK's type %q %s", params.Name, params.Arguments, sdk.Name, sdk.Arguments)
		}
	})
}
