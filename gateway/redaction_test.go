package gateway_test

import (
	"context"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestRedactionOfEncodedSecrets replays issue 8 finding 9: an upstream that
// holds the layer-1 credential returns it base32-encoded, as HTML character
// references, as \uXXXX escapes and inside a longer base64 text, in text
// content, structured content and an error. None of it reaches the client.
func TestRedactionOfEncodedSecrets(t *testing.T) {
	h := newHarness(t, hopts{})
	b := []byte(canary)
	each := func(format string) string {
		var out strings.Builder
		for _, r := range canary {
			fmt.Fprintf(&out, format, r)
		}
		return out.String()
	}
	forms := map[string]string{
		"base32":                 base32.StdEncoding.EncodeToString(b),
		"base32 hex, lower case": strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b)),
		"html decimal refs":      each("&#%d;"),
		"html hex refs":          each("&#x%X;"),
		`\u escapes`:             each(`\u%04x`),
		"inside base64 text":     base64.StdEncoding.EncodeToString([]byte("GET / HTTP/1.1\r\nAuthorization: Bearer " + canary + "\r\n\r\n")),
		"percent every byte":     each("%%%02X"),
	}
	var all []string
	for _, f := range forms {
		all = append(all, f)
	}
	h.up.server.AddTool(&mcp.Tool{Name: "encodings", Description: "leaks its credential, encoded", InputSchema: map[string]any{"type": "object"}, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			content := make([]mcp.Content, 0, len(all))
			for _, f := range all {
				content = append(content, &mcp.TextContent{Text: "<p>" + f + "</p>"})
			}
			return &mcp.CallToolResult{Content: content, StructuredContent: map[string]any{"forms": all}}, nil
		})
	h.up.server.AddTool(&mcp.Tool{Name: "encodedfail", Description: "fails with its credential, encoded", InputSchema: map[string]any{"type": "object"}, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, fmt.Errorf("upstream broke: %s", strings.Join(all, " "))
		})
	waitExposed(t, h, "up_encodings")
	waitExposed(t, h, "up_encodedfail")
	cs := h.mustConnect(h.mint("alice", "up_encod*").Token, nil)
	var seen strings.Builder
	for _, tool := range []string{"up_encodings", "up_encodedfail"} {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		seen.WriteString(callText(res))
		fmt.Fprint(&seen, res.StructuredContent)
	}
	got := seen.String()
	for name, f := range forms {
		if strings.Contains(got, f) {
			t.Errorf("%s form of the credential reached the client", name)
		}
	}
	if n := strings.Count(got, "[REDACTED]"); n < 2*len(forms) {
		t.Errorf("%d masks, want at least %d: %s", n, 2*len(forms), got)
	}
}
