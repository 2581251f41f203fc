package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/internal/gwtest"
)

// rawCall is one 2026-07-28 tools/call sent by hand, so that the test
// controls every header and byte.
type rawCall struct {
	name string         // the tool; also the Mcp-Name header unless header is set
	args string         // the arguments' JSON; "" for none
	meta map[string]any // added to the _meta triple; a nil value removes a key
	more string         // extra params fields, `"k":v,`
	hdr  map[string]string
}

func (c rawCall) body() []byte {
	meta := map[string]any{
		mcp.MetaKeyProtocolVersion:    "2026-07-28",
		mcp.MetaKeyClientInfo:         map[string]any{"name": "raw", "version": "1"},
		mcp.MetaKeyClientCapabilities: map[string]any{},
	}
	for k, v := range c.meta {
		if v == nil {
			delete(meta, k)
			continue
		}
		meta[k] = v
	}
	m, _ := json.Marshal(meta)
	args := ""
	if c.args != "" {
		args = `"arguments":` + c.args + `,`
	}
	return []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{%s%s"name":%q,"_meta":%s}}`, c.more, args, c.name, m))
}

// postCall sends c to h's gateway under token and returns the answer's
// Content-Type and its JSON-RPC message (the last SSE data line of a
// stream), decoded.
func (h *harness) postCall(t *testing.T, token string, c rawCall) (string, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", h.url+"/mcp", bytes.NewReader(c.body()))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", c.name)
	for k, v := range c.hdr {
		req.Header.Set(k, v)
	}
	resp, err := gwtest.Client(token, h.client.Transport).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	b, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(ct, "text/event-stream") {
		var last []byte
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				last = []byte(d)
			}
		}
		b = last
	}
	var msg map[string]any
	if err := json.Unmarshal(b, &msg); err != nil {
		return ct, map[string]any{"status": resp.StatusCode, "body": string(b)}
	}
	return ct, msg
}

// The fast path answers what the SDK's handler answers, byte for byte once
// decoded: the same result, redaction, refusals and errors, and the same
// audit entries; and it takes only the calls it is meant for.
func TestFastPathMatchesSDK(t *testing.T) {
	fast := newHarness(t, hopts{})
	slow := newHarness(t, hopts{noFastPath: true})
	tools := []string{"up_echo", "up_leak", "up_fail", "up_write", "up_progress"}
	ftok, stok := fast.mint("fast", tools...).Token, slow.mint("fast", tools...).Token

	for _, tt := range []struct {
		name   string
		call   rawCall
		onFast bool // served by the fast path
	}{
		{"result", rawCall{name: "up_echo", args: `{"text":"hi"}`}, true},
		{"no arguments", rawCall{name: "up_echo"}, true},
		{"redacted", rawCall{name: "up_leak", args: `{}`}, true},
		{"upstream error", rawCall{name: "up_fail", args: `{}`}, true},
		{"not in the token", rawCall{name: "up_whoami", args: `{}`}, true},
		{"not exposed", rawCall{name: "up_nothing", args: `{}`}, false},
		{"arguments not an object", rawCall{name: "up_echo", args: `[1]`}, true},
		{"duplicate argument", rawCall{name: "up_echo", args: `{"text":"a","text":"b"}`}, true},
		{"progress token", rawCall{name: "up_progress", args: `{}`, meta: map[string]any{"progressToken": "p1"}}, false},
		{"log level", rawCall{name: "up_echo", args: `{}`, meta: map[string]any{mcp.MetaKeyLogLevel: "debug"}}, false},
		{"unknown params field", rawCall{name: "up_echo", args: `{}`, more: `"task":{"ttl":1000},`}, false},
		{"Mcp-Name mismatch", rawCall{name: "up_echo", args: `{}`, hdr: map[string]string{"Mcp-Name": "up_leak"}}, false},
		{"Name spelled otherwise", rawCall{name: "up_echo", args: `{}`, more: `"Name":"up_leak",`}, false},
		{"no Accept of streams", rawCall{name: "up_echo", args: `{}`, hdr: map[string]string{"Accept": "application/json"}}, false},
		{"requestState of another kind", rawCall{name: "up_echo", args: `{}`, more: `"requestState":"approval-id","inputResponses":{},`}, false},
		{"sealed requestState without responses", rawCall{name: "up_echo", args: `{}`, more: `"requestState":"chatmcp-input.v1.AAAA",`}, false},
		{"no client capabilities", rawCall{name: "up_echo", args: `{}`, meta: map[string]any{mcp.MetaKeyClientCapabilities: nil}}, false},
		{"no client info", rawCall{name: "up_echo", args: `{}`, meta: map[string]any{mcp.MetaKeyClientInfo: nil}}, true},
		{"client info of another type", rawCall{name: "up_echo", args: `{}`, meta: map[string]any{mcp.MetaKeyClientInfo: map[string]any{"name": 5}}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := fast.gw.FastCalls()
			_, fmsg := fast.postCall(t, ftok, tt.call)
			_, smsg := slow.postCall(t, stok, tt.call)
			if !reflect.DeepEqual(fmsg, smsg) {
				t.Errorf("fast path answered\n%v\nthe SDK's handler\n%v", fmsg, smsg)
			}
			if onFast := fast.gw.FastCalls() > n; onFast != tt.onFast {
				t.Errorf("served by the fast path: %v, want %v (%v)", onFast, tt.onFast, fmsg)
			}
		})
	}
	// A call the fast path serves is what it claims: the upstream answered.
	_, msg := fast.postCall(t, ftok, rawCall{name: "up_echo", args: `{"text":"hi"}`})
	if b, _ := json.Marshal(msg); !bytes.Contains(b, []byte(`"echo: hi"`)) || !bytes.Contains(b, []byte(`"resultType":"complete"`)) {
		t.Fatalf("fast path result: %s", b)
	}

	// The same audit entries on both paths, less times and chain fields.
	entries := func(h *harness) []string {
		h.gw.Close()
		b, err := readFile(h.gw.DataDir() + "/audit.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.Verify(bytes.NewReader(b), nil); err != nil {
			t.Fatalf("audit log does not verify: %v", err)
		}
		var out []string
		for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var e map[string]any
			json.Unmarshal(l, &e)
			if e["action"] != "tools/call" {
				continue
			}
			out = append(out, fmt.Sprintf("%v %v %v %v %v", e["type"], e["tool"], e["decision"], e["reason"], e["args_sha256"]))
		}
		return out
	}
	fe, se := entries(fast), entries(slow)
	if len(fe) < 10 {
		t.Fatalf("only %d call entries on the fast path: %v", len(fe), fe)
	}
	// The fast harness made one more call (the check above).
	if !reflect.DeepEqual(fe[:len(se)], se) {
		t.Errorf("audit entries differ:\nfast %v\nslow %v", fe, se)
	}
}

// hangUpstream is a stateless 2026-07-28 server whose read-only tool
// "wait" blocks until its request ends (it treats a closed stream as the
// cancellation, as the spec asks); started and cancelled report each.
func hangUpstream(t *testing.T, stateless bool) (url string, started, cancelled chan struct{}) {
	started, cancelled = make(chan struct{}, 1), make(chan struct{})
	hang := mcp.NewServer(&mcp.Implementation{Name: "hang"}, nil)
	hang.AddTool(&mcp.Tool{Name: "wait", InputSchema: map[string]any{"type": "object"}, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			started <- struct{}{}
			select {
			case <-ctx.Done():
				close(cancelled)
			case <-time.After(30 * time.Second):
			}
			return &mcp.CallToolResult{}, nil
		})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return hang },
		&mcp.StreamableHTTPOptions{Stateless: stateless, PropagateRequestCancellation: true}))
	// Cleanups run last in, first out: a gateway made after this closes
	// its streams to this server before the server waits for them.
	t.Cleanup(srv.Close)
	return srv.URL, started, cancelled
}

// call_timeout ends a fast-path call posted to a stateless upstream: the
// caller is told, and the upstream's handler ends.
func TestFastPathPostCallTimeout(t *testing.T) {
	url, _, cancelled := hangUpstream(t, true)
	h := newHarness(t, hopts{upstream: func(*testUpstream) string {
		return "  hang:\n    url: " + url + "\n    call_timeout: 300ms\n"
	}})
	_, msg := h.postCall(t, h.mint("u", "hang_wait").Token, rawCall{name: "hang_wait", args: `{}`})
	if b, _ := json.Marshal(msg); !bytes.Contains(b, []byte("no answer within call_timeout (300ms)")) || h.gw.FastCalls() != 1 {
		t.Fatalf("answer %s (fast-path calls %d)", b, h.gw.FastCalls())
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream call went on after call_timeout")
	}
}

// A 2026-07-28 client that goes away ends its call upstream too, with the
// fast path and without, on an upstream with sessions (the SDK's client)
// and on a stateless one (the gateway's own POST on the fast path).
func TestFastPathDisconnectCancelsUpstream(t *testing.T) {
	for _, tc := range []struct{ stateless, noFast bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		stateless := tc.stateless
		t.Run(fmt.Sprintf("stateless=%v,nofast=%v", tc.stateless, tc.noFast), func(t *testing.T) {
			url, started, cancelled := hangUpstream(t, stateless)
			h := newHarness(t, hopts{noFastPath: tc.noFast, upstream: func(*testUpstream) string {
				return "  hang:\n    url: " + url + "\n"
			}})
			tok := h.mint("u", "hang_wait").Token

			ctx, cancel := context.WithCancel(context.Background())
			c := rawCall{name: "hang_wait", args: `{}`}
			req, _ := http.NewRequestWithContext(ctx, "POST", h.url+"/mcp", bytes.NewReader(c.body()))
			for k, v := range map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
				"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "hang_wait"} {
				req.Header.Set(k, v)
			}
			errc := make(chan error, 1)
			go func() {
				resp, err := gwtest.Client(tok, h.client.Transport).Do(req)
				if err == nil {
					resp.Body.Close()
				}
				errc <- err
			}()
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the call did not reach the upstream")
			}
			if want := map[bool]int64{false: 1, true: 0}[tc.noFast]; h.gw.FastCalls() != want {
				t.Fatalf("%d calls on the fast path, want %d", h.gw.FastCalls(), want)
			}
			cancel()
			<-errc
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream call went on after its client went away")
			}
		})
	}
}

// A fast-path call to a stateless upstream goes as one POST the gateway
// sends itself (call_forward_post.go); the caller gets what the SDK's
// client path gives it: the result, redacted, and the upstream's error.
func TestFastPathPostMatchesSDK(t *testing.T) {
	url, _ := statelessUpstream(t)
	up := func(*testUpstream) string { return fmt.Sprintf("  modern:\n    url: %s\n", url) }
	fast := newHarness(t, hopts{upstream: up})
	slow := newHarness(t, hopts{upstream: up, noFastPath: true})
	ftok, stok := fast.mint("p", "modern_*").Token, slow.mint("p", "modern_*").Token
	for _, tt := range []struct{ tool, want string }{
		{"modern_hello", "hello from [REDACTED]"},
		{"modern_fail", "modern upstream broke with key [REDACTED]"},
	} {
		t.Run(tt.tool, func(t *testing.T) {
			n := fast.gw.FastCalls()
			_, fmsg := fast.postCall(t, ftok, rawCall{name: tt.tool, args: `{}`})
			_, smsg := slow.postCall(t, stok, rawCall{name: tt.tool, args: `{}`})
			if fast.gw.FastCalls() != n+1 {
				t.Fatal("not served by the fast path")
			}
			fb, _ := json.Marshal(fmsg)
			sb, _ := json.Marshal(smsg)
			if !bytes.Contains(fb, []byte(tt.want)) || !bytes.Contains(sb, []byte(tt.want)) || bytes.Contains(fb, []byte(canary)) {
				t.Fatalf("fast path: %s\nSDK path: %s\nwant both to contain %q", fb, sb, tt.want)
			}
			if !reflect.DeepEqual(fmsg, smsg) {
				t.Errorf("fast path answered\n%s\nthe SDK's path\n%s", fb, sb)
			}
		})
	}
}

// An upstream's input_required round reaches a 2026-07-28 caller on the
// fast path (inputround.go): the form, redacted, with a sealed state; the
// retry with the caller's answer completes the call. The seal is refused
// to another token, for other arguments, tampered with, or expired, and
// each refusal is audited; the upstream never sees those retries.
func TestFastPathInputRound(t *testing.T) {
	url, _ := statelessUpstream(t)
	h := newHarness(t, hopts{upstream: func(*testUpstream) string { return fmt.Sprintf("  modern:\n    url: %s\n", url) }})
	alice, mallory := h.mint("alice", "modern_*").Token, h.mint("mallory", "modern_*").Token
	caps := map[string]any{mcp.MetaKeyClientCapabilities: map[string]any{"elicitation": map[string]any{"form": map[string]any{}}}}
	_, msg := h.postCall(t, alice, rawCall{name: "modern_ask", args: `{"for":" alice"}`, meta: caps})
	b, _ := json.Marshal(msg)
	var first struct {
		Result struct {
			ResultType    string `json:"resultType"`
			RequestState  string `json:"requestState"`
			InputRequests map[string]struct {
				Method string `json:"method"`
				Params struct {
					Message string `json:"message"`
				} `json:"params"`
			} `json:"inputRequests"`
		} `json:"result"`
	}
	json.Unmarshal(b, &first)
	if first.Result.ResultType != "input_required" || first.Result.InputRequests["name"].Params.Message != "your name? ([REDACTED]) alice" ||
		!strings.HasPrefix(first.Result.RequestState, "chatmcp-input.v1.") || bytes.Contains(b, []byte(canary)) {
		t.Fatalf("first round: %s", b)
	}
	state := first.Result.RequestState
	retry := func(token, args, st string) map[string]any {
		more := fmt.Sprintf(`"requestState":%q,"inputResponses":{"name":{"action":"accept","content":{"name":"alice"}}},`, st)
		_, msg := h.postCall(t, token, rawCall{name: "modern_ask", args: args, meta: caps, more: more})
		return msg
	}
	refused := func(name string, msg map[string]any) {
		t.Helper()
		b, _ := json.Marshal(msg)
		if !bytes.Contains(b, []byte(`"code":-32602`)) || !bytes.Contains(b, []byte("does not name an input round of yours")) {
			t.Errorf("%s: %s, want the seal refused", name, b)
		}
	}
	refused("another token", retry(mallory, `{"for":" alice"}`, state))
	refused("other arguments", retry(alice, `{"for":" bob"}`, state))
	tampered := []byte(state)
	tampered[len(tampered)-3] ^= 1
	refused("tampered", retry(alice, `{"for":" alice"}`, string(tampered)))
	if b, _ := json.Marshal(retry(alice, `{"for":" alice"}`, state)); !bytes.Contains(b, []byte(`"text":"accept alice"`)) {
		t.Fatalf("retry with the answer: %s", b)
	}
	h.now.Advance(gateway.InputRoundWindow + time.Second)
	refused("expired", retry(alice, `{"for":" alice"}`, state))

	h.gw.Close()
	log, err := readFile(h.gw.DataDir() + "/audit.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(log, []byte(`"reason":"input state mismatch`)); n != 4 {
		t.Errorf("%d audited seal refusals, want 4", n)
	}
	if !bytes.Contains(log, []byte(`"decision":"input_required"`)) {
		t.Error("the input round's outcome is not audited")
	}
}
