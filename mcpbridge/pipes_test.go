package mcpbridge

import (
	"context"
	"io"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// pipes returns the two ends of a desktop client's stdio: local, the
// bridge's connection, and desktop, the client's transport; done closes the
// client's input once the bridge is finished with local.
func pipes(t *testing.T, ctx context.Context) (local mcp.Connection, desktop *mcp.IOTransport, done func()) {
	t.Helper()
	c2bR, c2bW := io.Pipe()
	b2cR, b2cW := io.Pipe()
	local, err := (&mcp.IOTransport{Reader: c2bR, Writer: b2cW}).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return local, &mcp.IOTransport{Reader: b2cR, Writer: c2bW}, func() { b2cW.Close() }
}
