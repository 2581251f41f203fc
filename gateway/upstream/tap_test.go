package upstream

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sse runs body through an sseTap of call id on c.
func sse(c *Conn, id uint64, body string) string {
	r := &sseTap{body: io.NopCloser(strings.NewReader(body)), c: c, id: id}
	r.br = bufio.NewReader(r.body)
	out, _ := io.ReadAll(r)
	return string(out)
}

func newConn() *Conn {
	return &Conn{inflight: map[uint64]*Call{}, nonce: "n0nce", ids: new(atomic.Uint64)}
}

// The tap marks the messages of a call's stream with that call, replaces
// a mark the upstream forged, leaves responses and non-message events
// alone, and counts progress and log notifications for Settle.
func TestSSETapMarks(t *testing.T) {
	c := newConn()
	id, end := c.Begin(&Call{})
	defer end()
	body := "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"x\",\"_meta\":{\"" + TagKey + "\":\"forged/99\"}}}\n\n" +
		": comment\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"elicitation/create\",\"params\":{\"message\":\"m\"}}\r\n\r\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n"
	out := sse(c, id, body)
	var msgs []map[string]any
	for _, l := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "data: "); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(d), &m); err != nil {
				t.Fatalf("data %q: %v", d, err)
			}
			msgs = append(msgs, m)
		}
	}
	if len(msgs) != 3 {
		t.Fatalf("got %d messages in %q", len(msgs), out)
	}
	for i := range 2 {
		meta := mcp.Meta(msgs[i]["params"].(map[string]any)["_meta"].(map[string]any))
		if cl, got := c.Tagged(meta); cl == nil || got != id {
			t.Errorf("message %d: mark %v, want call %d", i, meta[TagKey], id)
		}
	}
	if _, ok := msgs[2]["params"]; ok {
		t.Errorf("a response was changed: %v", msgs[2])
	}
	if !strings.Contains(out, "id: 1\n") || !strings.Contains(out, ": comment\n") {
		t.Errorf("event ids or comments lost: %q", out)
	}
	c.mu.Lock()
	seen := c.inflight[id].seen
	c.mu.Unlock()
	if seen != 1 {
		t.Errorf("counted %d notifications, want 1 (the log message)", seen)
	}
}

// A message on a stream that belongs to no call (the standalone stream)
// loses any mark the upstream wrote.
func TestSSETapStripsForgedMark(t *testing.T) {
	c := newConn()
	id, end := c.Begin(&Call{})
	defer end()
	body := "data: {\"method\":\"elicitation/create\",\"id\":1,\"params\":{\"_meta\":{\"" + TagKey + "\":\"n0nce/" + itoa(id) + "\"}}}\n\n"
	out := sse(c, 0, body)
	if strings.Contains(out, TagKey) {
		t.Fatalf("forged mark kept: %q", out)
	}
}

func itoa(id uint64) string { b, _ := json.Marshal(id); return string(b) }

// FuzzSSETap: whatever an upstream sends, the tap never panics, and
// everything that is not a message event passes unchanged.
func FuzzSSETap(f *testing.F) {
	f.Add("data: {\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"chatmcp-1\"}}\n\n")
	f.Add("id: 5\nretry: 10\ndata:\n\n")
	f.Add("data: [1,2]\ndata: 3\n\nevent: x\ndata: {\"method\":\"m\"}\n\n")
	f.Add("data: {\"method\":\"m\",\"params\":null}\r\n\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		c := newConn()
		id, end := c.Begin(&Call{})
		defer end()
		out := sse(c, id, body)
		if !strings.Contains(body, "data") && out != body {
			t.Fatalf("changed a stream without data: %q -> %q", body, out)
		}
		c.stdioCall("notifications/progress", json.RawMessage(body))
		c.retag("m", json.RawMessage(body), id)
	})
}
