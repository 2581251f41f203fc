package gateway_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestPassthroughConcurrentSync replays issue 8 finding 13: two upstreams
// change their resources and prompts at the same time while a client
// reads them, so that the gateway runs several syncs of each upstream and of
// both at once (each list_changed notification starts one). Under -race the
// unguarded writes to the passthrough maps were reported; every URI must end
// up served exactly once, by one upstream.
func TestPassthroughConcurrentSync(t *testing.T) {
	second := newUpstream(t)
	h := newHarness(t, hopts{upstream: func(*testUpstream) string {
		return fmt.Sprintf("  up2:\n    url: %s\n", second.http.URL)
	}})
	cs := h.mustConnect(h.mint("alice", "*").Token, nil)
	ctx := context.Background()

	const n = 12
	text := func(s string) mcp.ResourceHandler {
		return func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: s}}}, nil
		}
	}
	prompt := func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hi"}}}}, nil
	}
	var wg sync.WaitGroup
	for _, up := range []struct {
		name string
		srv  *mcp.Server
	}{{"up", h.up.server}, {"up2", second.server}} {
		for i := range n {
			wg.Go(func() {
				up.srv.AddResource(&mcp.Resource{Name: fmt.Sprintf("own%d", i), URI: fmt.Sprintf("file:///%s/%d", up.name, i)}, text(up.name))
				// Both upstreams offer the shared URIs.
				up.srv.AddResource(&mcp.Resource{Name: fmt.Sprintf("shared%d", i), URI: fmt.Sprintf("file:///shared/%d", i)}, text(up.name))
				up.srv.AddPrompt(&mcp.Prompt{Name: fmt.Sprintf("p%d", i)}, prompt)
			})
		}
	}
	// The client reads while the gateway syncs.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			cs.ListResources(ctx, nil)
			cs.ListPrompts(ctx, nil)
			cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///shared/0"})
		}
	})
	wg.Wait()

	// The expected end state: every URI once, every prompt of both.
	want := map[string]bool{"file:///notes.txt": true}
	for i := range n {
		want[fmt.Sprintf("file:///up/%d", i)] = true
		want[fmt.Sprintf("file:///up2/%d", i)] = true
		want[fmt.Sprintf("file:///shared/%d", i)] = true
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		rl, err := cs.ListResources(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		pl, err := cs.ListPrompts(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, r := range rl.Resources {
			seen[r.URI]++
		}
		complete := len(seen) == len(want) && len(pl.Prompts) == 2*(n+1)
		for uri := range want {
			complete = complete && seen[uri] == 1
		}
		if complete {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resources %v (want each of %d once), %d prompts (want %d)", seen, len(want), len(pl.Prompts), 2*(n+1))
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	readers.Wait()
	for i := range n {
		uri := fmt.Sprintf("file:///shared/%d", i)
		rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err != nil || len(rr.Contents) != 1 {
			t.Fatalf("read %s: %v %v", uri, rr, err)
		}
	}
}
