package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestEnviron(t *testing.T) {
	genv := map[string]string{"PATH": "/bin", "HOME": "/h", "SECRET_OF_GATEWAY": "x", "LANG": ""}
	got := strings.Join(Environ(map[string]string{"API_KEY": "k", "PATH": "/override"}, func(k string) string { return genv[k] }), " ")
	if got != "API_KEY=k HOME=/h PATH=/override" {
		t.Fatalf("environ = %q", got)
	}
}

// TestDialHTTP: headers are set on every request and the handshake
// completes against a real go-sdk server.
func TestDialHTTP(t *testing.T) {
	srv := mcp.NewServer(&mcp.Implementation{Name: "s"}, nil)
	srv.AddTool(&mcp.Tool{Name: "t", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	var seen []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("X-Key"))
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()
	cs, err := Dial(context.Background(), &Spec{Name: "u", URL: ts.URL, Headers: map[string]string{"X-Key": "v"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := ListTools(context.Background(), cs)
	if err != nil || len(tools) != 1 || tools[0].Name != "t" {
		t.Fatalf("tools %v %v", tools, err)
	}
	for _, v := range seen {
		if v != "v" {
			t.Fatalf("request without the configured header: %q", v)
		}
	}
}

func TestDialRefusesEmptySpec(t *testing.T) {
	if _, err := Dial(context.Background(), &Spec{Name: "x"}, nil); err == nil {
		t.Fatal("dialled an empty spec")
	}
}
