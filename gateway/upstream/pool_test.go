package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// testServer is a real go-sdk MCP server over streamable HTTP.
func testServer(t *testing.T) string {
	t.Helper()
	srv := mcp.NewServer(&mcp.Implementation{Name: "s"}, nil)
	srv.AddTool(&mcp.Tool{Name: "t", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{}, nil
	})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	t.Cleanup(ts.Close)
	return ts.URL
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// waitLost waits until the pool forgot c (its watcher ran).
func waitLost(t *testing.T, lost func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !lost() {
		if time.Now().After(deadline) {
			t.Fatal("the pool kept a closed connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPoolShared(t *testing.T) {
	url := testServer(t)
	var readies atomic.Int32
	readyErr := error(nil)
	var mu sync.Mutex
	p := NewPool(&PoolOptions{Name: "u", Logger: quiet(),
		Spec: func(k Key) (*Spec, error) {
			if k != (Key{}) {
				t.Errorf("shared pool asked for the spec of %v", k)
			}
			return &Spec{Name: "u", URL: url}, nil
		},
		Ready: func(ctx context.Context, c *Conn) error {
			readies.Add(1)
			mu.Lock()
			defer mu.Unlock()
			return readyErr
		},
	})
	defer p.Close()
	c, err := p.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if readies.Load() != 0 {
		t.Fatal("Ready ran on the first connection (its caller syncs it)")
	}
	for _, k := range []Key{{}, {Principal: "a", Session: "s"}} {
		if got, err := p.Get(context.Background(), k); err != nil || got != c {
			t.Fatalf("Get(%v) = %p, %v; want the shared %p", k, got, err, c)
		}
	}

	t.Run("a lost connection is redialled and made ready", func(t *testing.T) {
		c.Client().Close()
		waitLost(t, func() bool { return p.Shared() == nil })
		c2, err := p.Get(context.Background(), Key{})
		if err != nil || c2 == c || p.Shared() != c2 || readies.Load() != 1 {
			t.Fatalf("redial: %p %v (ready ran %d times)", c2, err, readies.Load())
		}
		c = c2
	})
	t.Run("a failed Ready check installs nothing", func(t *testing.T) {
		mu.Lock()
		readyErr = errors.New("pins changed")
		mu.Unlock()
		c.Client().Close()
		waitLost(t, func() bool { return p.Shared() == nil })
		if got, err := p.Get(context.Background(), Key{}); !errors.Is(err, ErrUnavailable) || got != nil {
			t.Fatalf("Get = %p, %v; want ErrUnavailable", got, err)
		}
		if p.Shared() != nil {
			t.Fatal("a connection that failed Ready was installed")
		}
	})
}

func TestPoolPerSession(t *testing.T) {
	url := testServer(t)
	p := NewPool(&PoolOptions{Name: "u", PerSession: true, Logger: quiet(),
		Spec: func(k Key) (*Spec, error) {
			if k.Principal == "nocred" {
				return nil, errors.New(`credential "tok" not provided`)
			}
			return &Spec{Name: "u", URL: url, Headers: map[string]string{"X-Principal": k.Principal}}, nil
		},
	})
	defer p.Close()
	shared, err := p.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a1 := Key{Principal: "alice", Session: "s1"}
	a2 := Key{Principal: "alice", Session: "s2"}
	b1 := Key{Principal: "bob", Session: "s1"}

	// Concurrent first calls of one key share one connection.
	var wg sync.WaitGroup
	got := make([]*Conn, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = p.Get(context.Background(), a1)
		}()
	}
	wg.Wait()
	for _, c := range got {
		if c == nil || c != got[0] || c == shared {
			t.Fatalf("concurrent Gets of one key: %p", got)
		}
	}
	ca2, _ := p.Get(context.Background(), a2)
	cb1, _ := p.Get(context.Background(), b1)
	if ca2 == got[0] || cb1 == got[0] || ca2 == cb1 || ca2 == nil || cb1 == nil {
		t.Fatal("two keys share a connection")
	}
	if _, err := p.Get(context.Background(), Key{Principal: "nocred", Session: "s1"}); err == nil || err.Error() != `credential "tok" not provided` {
		t.Fatalf("a missing credential gave %v", err)
	}

	// The session s1 ends: its connections close, s2's stays.
	p.DropSession("s1")
	if c, _ := p.Get(context.Background(), a2); c != ca2 {
		t.Fatal("dropping s1 dropped s2's connection")
	}
	if c, _ := p.Get(context.Background(), b1); c == cb1 {
		t.Fatal("dropping s1 kept its connection")
	}

	// A stateless client's connection (no session) goes only when asked.
	bs := Key{Principal: "bob"}
	cbs, _ := p.Get(context.Background(), bs)
	p.DropIf(func(k Key) bool { return k.Session == "" && k.Principal == "alice" })
	if c, _ := p.Get(context.Background(), bs); c != cbs {
		t.Fatal("DropIf dropped a connection it did not match")
	}
	p.DropIf(func(k Key) bool { return k.Session == "" })
	if c, _ := p.Get(context.Background(), bs); c == cbs {
		t.Fatal("DropIf kept the connection it matched")
	}
}

func TestPoolClose(t *testing.T) {
	url := testServer(t)
	p := NewPool(&PoolOptions{Name: "u", PerSession: true, Logger: quiet(),
		Spec: func(Key) (*Spec, error) { return &Spec{Name: "u", URL: url}, nil }})
	shared, err := p.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Get(context.Background(), Key{Principal: "a", Session: "s"})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close()
	for _, cc := range []*Conn{shared, c} {
		if err := cc.Client().Ping(context.Background(), nil); err == nil {
			t.Fatal("a connection outlived Close")
		}
	}
	if _, err := p.Get(context.Background(), Key{Principal: "a", Session: "s"}); err == nil {
		t.Fatal("Get after Close succeeded")
	}
}

func TestConnCalls(t *testing.T) {
	var ids atomic.Uint64
	c := &Conn{ids: &ids, inflight: map[uint64]*Call{}, nonce: "x"}
	if c.stdioCall("elicitation/create", nil) != 0 {
		t.Fatal("a stdio message attributed with no call in flight")
	}
	s1, s2 := &mcp.ServerSession{}, &mcp.ServerSession{}
	ctx := context.Background()
	id1, end1 := c.Begin(&Call{Session: s1, Ctx: ctx, ProgressToken: "p"})
	id2, end2 := c.Begin(&Call{Session: s1, Ctx: ctx})
	if id1 == id2 || c.Call(id1).ProgressToken != "p" {
		t.Fatalf("ids %d %d", id1, id2)
	}
	if got := c.stdioCall("elicitation/create", nil); got != id2 {
		t.Fatalf("two calls of one session: stdio message attributed to %d, want the latest, %d", got, id2)
	}
	progress := json.RawMessage(`{"progressToken":"` + ProgressToken(id1) + `"}`)
	id3, end3 := c.Begin(&Call{Session: s2, Ctx: ctx})
	if got := c.stdioCall("elicitation/create", nil); got != 0 {
		t.Fatalf("calls of two sessions: stdio message attributed to %d", got)
	}
	if got := c.stdioCall("notifications/progress", progress); got != id1 {
		t.Fatalf("progress attributed to %d, want its token's call %d", got, id1)
	}
	end1()
	end2()
	end3()
	if c.Call(id1) != nil || c.Call(id3) != nil {
		t.Fatal("ended calls still in flight")
	}
}
