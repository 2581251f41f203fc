package mcpbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A 2026-07-28 desktop client calls, through the bridge, a tool whose
// schema marks arguments for Mcp-Param-* headers, on a go-sdk server that
// refuses a call whose headers are missing or differ from the body: the
// call goes through once the bridge relayed the tool list, with a
// non-ASCII string base64-wrapped, an integer, and a nested argument.
func TestBridgeParamHeaders(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "v0"}, nil)
	schema := map[string]any{"type": "object", "properties": map[string]any{
		"region": map[string]any{"type": "string", "x-mcp-header": "Region"},
		"count":  map[string]any{"type": "integer", "x-mcp-header": "Count"},
		"where":  map[string]any{"type": "object", "properties": map[string]any{"zone": map[string]any{"type": "string", "x-mcp-header": "Zone"}}},
		"plain":  map[string]any{"type": "string"},
	}}
	got := make(chan http.Header, 1)
	s.AddTool(&mcp.Tool{Name: "put", InputSchema: schema}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		got <- req.Extra.Header.Clone()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	local, desktop, closeLocal := pipes(t, ctx)
	ran := make(chan struct{})
	defer func() { cancel(); <-ran }()
	go func() {
		defer close(ran)
		Run(ctx, local, &Options{Endpoint: srv.URL, HTTP: http.DefaultClient, Logf: t.Logf})
		closeLocal()
	}()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "desktop"}, nil).Connect(ctx, desktop,
		&mcp.ClientSessionOptions{ProtocolVersion: ProtocolStateless})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	args := map[string]any{"region": "zürich", "count": 7, "where": map[string]any{"zone": " a"}, "plain": "x"}

	// Before the list, the bridge knows no marks: the server refuses.
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "put", Arguments: args}); err == nil && !res.IsError {
		t.Fatal("the server took a call without its Mcp-Param headers; the test proves nothing")
	}
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "put", Arguments: args})
	if err != nil || res.IsError {
		t.Fatalf("call with marked arguments: %v %+v", err, res)
	}
	hdr := <-got
	for k, want := range map[string]string{
		"Mcp-Param-Region": "=?base64?esO8cmljaA==?=",
		"Mcp-Param-Count":  "7",
		"Mcp-Param-Zone":   "=?base64?IGE=?=",
	} {
		if v := hdr.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	for k := range hdr {
		if strings.HasPrefix(k, "Mcp-Param-") && !strings.Contains("Mcp-Param-Region Mcp-Param-Count Mcp-Param-Zone", k) {
			t.Errorf("unexpected header %s", k)
		}
	}
}

// FuzzParamHeaders: no schema or arguments crash the bridge's reading of
// the marks, and every header value it produces is a header-safe string
// that names a marked argument.
func FuzzParamHeaders(f *testing.F) {
	f.Add([]byte(`{"type":"object","properties":{"r":{"type":"string","x-mcp-header":"R"},"o":{"properties":{"z":{"x-mcp-header":"Z"}}}}}`),
		[]byte(`{"name":"t","arguments":{"r":"zürich","o":{"z":3}}}`))
	f.Add([]byte(`{"properties":{"r":{"x-mcp-header":"R"}}}`), []byte(`{"arguments":{"r":null}}`))
	f.Add([]byte(`{"properties":{"r":{"x-mcp-header":"R"}}}`), []byte(`{"arguments":{"r":1e300}}`))
	f.Fuzz(func(t *testing.T, schema, params []byte) {
		b := &bridge{}
		list, _ := json.Marshal(map[string]any{"tools": []any{map[string]any{"name": "t", "inputSchema": json.RawMessage(schema)}}})
		if !json.Valid(schema) {
			list = []byte(`{"tools":[]}`)
		}
		b.learnTools(list)
		for k, v := range b.paramHeaders("t", params) {
			if !strings.HasPrefix(k, paramPrefix) {
				t.Fatalf("header %q", k)
			}
			for _, c := range v {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("header %s value %q is not printable ASCII", k, v)
				}
			}
		}
	})
}
