package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Attribution. What an upstream sends during a call — progress, log
// messages, elicitation, sampling and roots requests — belongs to that call
// and goes to its caller only. The SDK hands these to the client's handlers
// without saying which request they came with, so the connection taps what
// arrives and marks each message, in its params' _meta under TagKey, with
// the call it belongs to ("<nonce>/<call id>", the nonce random per
// connection and never sent upstream, so an upstream cannot forge a mark):
//
//   - streamable HTTP: a server sends what belongs to a request on that
//     request's response stream (the SSE body of its POST, or the GET that
//     resumes it), and the HTTP request carries the call's context (WithCall),
//     so every message on that stream is marked with that call; messages on
//     the standalone GET stream belong to no call.
//   - stdio has one stream for everything: a progress notification belongs
//     to the call whose progress token it carries (the gateway's own,
//     "chatmcp-<id>"), anything else to the calls in flight when it is read,
//     if they are all one client session's (the most recent of them);
//     otherwise it belongs to no call.
//
// Marks already present in what the upstream sent are removed first.
//
// The tap also counts, per call, the progress and log notifications that
// arrived before the call's result, and Settle waits until the handlers
// have dealt with each (the SDK delivers a result at once but queues
// notifications), so nothing the upstream sent before its result is lost.

// TagKey is the _meta key of the mark (see above).
const TagKey = "chatmcp.gateway/call"

type callKey struct{}

// WithCall returns ctx for sending call id (Conn.Begin) to the upstream:
// what the upstream sends on that request's stream is marked as the call's.
func WithCall(ctx context.Context, id uint64) context.Context {
	return context.WithValue(ctx, callKey{}, id)
}

func callOf(ctx context.Context) uint64 {
	id, _ := ctx.Value(callKey{}).(uint64)
	return id
}

func newNonce() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ProgressToken is the progress token the gateway puts on upstream call id
// when its client asked for progress.
func ProgressToken(id uint64) string { return "chatmcp-" + strconv.FormatUint(id, 10) }

func progressCall(tok any) uint64 {
	s, ok := tok.(string)
	if !ok || !strings.HasPrefix(s, "chatmcp-") {
		return 0
	}
	id, err := strconv.ParseUint(s[len("chatmcp-"):], 10, 64)
	if err != nil {
		return 0
	}
	return id
}

// counted reports whether Settle waits for notifications of method.
func counted(method string) bool {
	return method == "notifications/progress" || method == "notifications/message"
}

// retag returns params with the mark of call id (none when id is 0 or the
// call is not in flight), and counts it for Settle. params that are not a
// JSON object are returned as they are.
func (c *Conn) retag(method string, params json.RawMessage, id uint64) json.RawMessage {
	var p map[string]json.RawMessage
	if len(params) > 0 && !bytes.Equal(params, []byte("null")) {
		if err := json.Unmarshal(params, &p); err != nil || p == nil {
			return params
		}
	}
	var meta map[string]json.RawMessage
	if m, ok := p["_meta"]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return params
		}
	}
	_, had := meta[TagKey]
	delete(meta, TagKey)
	c.mu.Lock()
	cl := c.inflight[id]
	if cl != nil && counted(method) {
		cl.seen++
	}
	c.mu.Unlock()
	if cl == nil && !had {
		return params
	}
	if cl != nil {
		if meta == nil {
			meta = map[string]json.RawMessage{}
		}
		meta[TagKey], _ = json.Marshal(c.nonce + "/" + strconv.FormatUint(id, 10))
	}
	if p == nil {
		p = map[string]json.RawMessage{}
	}
	if len(meta) == 0 {
		delete(p, "_meta")
	} else {
		p["_meta"], _ = json.Marshal(meta)
	}
	out, err := json.Marshal(p)
	if err != nil {
		return params
	}
	return out
}

// stdioCall is the call a message read on a stdio connection belongs to.
func (c *Conn) stdioCall(method string, params json.RawMessage) uint64 {
	if method == "notifications/progress" {
		var p struct {
			Token any `json:"progressToken"`
		}
		json.Unmarshal(params, &p)
		return progressCall(p.Token)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var last uint64
	var ss *mcp.ServerSession
	for id, cl := range c.inflight {
		if ss != nil && cl.Session != ss {
			return 0
		}
		ss = cl.Session
		last = max(last, id)
	}
	return last
}

// Tagged returns the call in flight that marked meta names, nil if none.
func (c *Conn) Tagged(meta mcp.Meta) (*Call, uint64) {
	tag, _ := meta[TagKey].(string)
	nonce, n, ok := strings.Cut(tag, "/")
	if !ok || nonce != c.nonce {
		return nil, 0
	}
	id, err := strconv.ParseUint(n, 10, 64)
	if err != nil {
		return nil, 0
	}
	return c.Call(id), id
}

// CallOf returns the call in flight on c that ctx was derived from, nil if
// none: how an input request that the upstream returned in a result (a
// 2026-07-28 input_required round, which the SDK's client fulfils on the
// calling request's own context) is attributed, exactly and without a mark
// the upstream could copy.
func (c *Conn) CallOf(ctx context.Context) *Call {
	if id := callOf(ctx); id != 0 {
		return c.Call(id)
	}
	return nil
}

// Handled records that a handler dealt with a counted notification of
// call id (Tagged), delivered or dropped, for Settle.
func (c *Conn) Handled(id uint64) {
	c.mu.Lock()
	cl := c.inflight[id]
	if cl != nil {
		cl.handled++
	}
	c.mu.Unlock()
	if cl == nil {
		return
	}
	select {
	case cl.wake <- struct{}{}:
	default:
	}
}

// Settle waits, at most timeout, until every progress and log notification
// that call id received so far has been handled.
func (c *Conn) Settle(id uint64, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		c.mu.Lock()
		cl := c.inflight[id]
		done := cl == nil || cl.handled >= cl.seen
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-cl.wake:
		case <-t.C:
			return
		}
	}
}

// StripTag removes the mark from meta (before what it marks goes to a
// client).
func StripTag(meta mcp.Meta) { delete(meta, TagKey) }

// WithoutTag returns a copy of meta without the mark, nil if nothing is
// left.
func WithoutTag(meta mcp.Meta) mcp.Meta {
	var out mcp.Meta
	for k, v := range meta {
		if k != TagKey {
			if out == nil {
				out = mcp.Meta{}
			}
			out[k] = v
		}
	}
	return out
}

// tapTransport taps a stdio connection (see above). Streamable HTTP is
// tapped at the HTTP layer (tapRT) instead: its connection carries session
// state that a wrapper would hide from the SDK.
type tapTransport struct {
	mcp.Transport
	c *Conn
}

func (t *tapTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	conn, err := t.Transport.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &tapConn{Connection: conn, c: t.c}, nil
}

type tapConn struct {
	mcp.Connection
	c *Conn
}

func (t *tapConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	msg, err := t.Connection.Read(ctx)
	if req, ok := msg.(*jsonrpc.Request); ok && err == nil {
		req.Params = t.c.retag(req.Method, req.Params, t.c.stdioCall(req.Method, req.Params))
	}
	return msg, err
}

// tapRT taps the SSE response streams of a streamable-HTTP upstream.
type tapRT struct {
	base http.RoundTripper
	c    *Conn
}

func (t *tapRT) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp, err
	}
	resp.Body = &sseTap{body: resp.Body, br: bufio.NewReader(resp.Body), c: t.c, id: callOf(r.Context())}
	return resp, nil
}

// sseTap re-frames an SSE stream, marking the data of every message event
// (retag) before the SDK reads it.
type sseTap struct {
	body  io.ReadCloser
	br    *bufio.Reader
	c     *Conn
	id    uint64
	event [][]byte // lines of the event being read
	size  int      // their bytes
	out   bytes.Buffer
	err   error
}

// maxSSEEvent caps one event of an upstream's SSE stream (the SDK's own
// reader has a cap of its own; this one keeps the tap from buffering an
// endless event).
const maxSSEEvent = 32 << 20

func (s *sseTap) Close() error { return s.body.Close() }

func (s *sseTap) Read(p []byte) (int, error) {
	for s.out.Len() == 0 && s.err == nil {
		line, err := s.readLine()
		if len(line) > 0 {
			s.event = append(s.event, line)
			s.size += len(line)
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				s.flush()
			}
		}
		if err != nil {
			for _, l := range s.event {
				s.out.Write(l)
			}
			s.event, s.err = nil, err
		}
	}
	if s.out.Len() > 0 {
		return s.out.Read(p)
	}
	return 0, s.err
}

// readLine reads one line, failing when the event it belongs to would
// exceed maxSSEEvent.
func (s *sseTap) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := s.br.ReadSlice('\n')
		line = append(line, chunk...)
		if s.size+len(line) > maxSSEEvent {
			s.event = nil
			return nil, fmt.Errorf("upstream SSE event larger than %d bytes", maxSSEEvent)
		}
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// flush writes the complete event in s.event to s.out, its data marked.
func (s *sseTap) flush() {
	var data []byte
	name, n := "", 0
	for _, l := range s.event {
		f, v, _ := bytes.Cut(bytes.TrimRight(l, "\r\n"), []byte(":"))
		v = bytes.TrimPrefix(v, []byte(" "))
		switch string(f) {
		case "data":
			if n > 0 {
				data = append(data, '\n')
			}
			data = append(data, v...)
			n++
		case "event":
			name = string(v)
		}
	}
	marked := data
	if n > 0 && (name == "" || name == "message") {
		marked = s.mark(data)
	}
	if bytes.Equal(marked, data) {
		for _, l := range s.event {
			s.out.Write(l)
		}
	} else {
		for _, l := range s.event {
			if !bytes.HasPrefix(l, []byte("data:")) && len(bytes.TrimRight(l, "\r\n")) > 0 {
				s.out.Write(l)
			}
		}
		fmt.Fprintf(&s.out, "data: %s\n\n", marked)
	}
	s.event, s.size = s.event[:0], 0
}

// mark retags data when it is a JSON-RPC request or notification.
func (s *sseTap) mark(data []byte) []byte {
	var m struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if !bytes.Contains(data, []byte(`"method"`)) || json.Unmarshal(data, &m) != nil || m.Method == "" {
		return data
	}
	params := s.c.retag(m.Method, m.Params, s.id)
	if bytes.Equal(params, m.Params) {
		return data
	}
	var all map[string]json.RawMessage
	if json.Unmarshal(data, &all) != nil {
		return data
	}
	all["params"] = params
	out, err := json.Marshal(all)
	if err != nil {
		return data
	}
	return out
}
