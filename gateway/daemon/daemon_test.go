package daemon_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/gateway/daemon"
	"github.com/chatmcp/chatmcp/internal/gwtest"
)

// The process's shutdown (what SIGTERM does: Run's context ends) with a
// call hung upstream returns within gateway.ShutdownTimeout, and the
// upstream is told to cancel the call.
func TestRunStopsWithinBound(t *testing.T) {
	started, cancelled := make(chan struct{}, 1), make(chan struct{}, 1)
	up := mcp.NewServer(&mcp.Implementation{Name: "hang"}, nil)
	up.AddTool(&mcp.Tool{Name: "hang", InputSchema: map[string]any{"type": "object"}, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, _ *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			started <- struct{}{}
			<-ctx.Done()
			cancelled <- struct{}{}
			return nil, ctx.Err()
		})
	uh := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	defer uh.Close()

	dir := t.TempDir()
	cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata: %s\nupstreams:\n  h:\n    url: %s\n", dir, uh.URL)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	ran := make(chan error, 1)
	go func() {
		ran <- daemon.Run(ctx, &daemon.Options{Config: cfg, Dev: true, Stderr: io.Discard,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Deps:   daemon.Deps{Ready: func(a net.Addr) { addr <- a }}})
	}()
	var base string
	select {
	case a := <-addr:
		base = "https://" + a.String()
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // the simulated RA-TLS certificate
	admin, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", base+"/admin/v1/tokens", bytes.NewReader([]byte(`{"tools":["h_*"]}`)))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(admin)))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m gateway.MintResponse
	json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()

	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c"}, nil).Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: gwtest.Client(m.Token, tr), MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	go cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "h_hang", Arguments: map[string]any{}})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not reach the upstream")
	}
	t0 := time.Now()
	stop()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(gateway.ShutdownTimeout + time.Second):
		t.Fatalf("Run did not return within %s of its context ending", gateway.ShutdownTimeout+time.Second)
	}
	t.Logf("Run returned %s after its context ended", time.Since(t0))
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream never saw the call cancelled")
	}
}
