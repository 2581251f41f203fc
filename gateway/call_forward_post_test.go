package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/authz"
)

func answerOf(ct, body string) *http.Response {
	return &http.Response{Header: http.Header{"Content-Type": {ct}}, Body: http.NoBody, ContentLength: int64(len(body)),
		Request: nil, StatusCode: 200, Proto: "HTTP/1.1"}
}

// readAnswer finds the response to its request in a JSON body or on an
// event stream (skipping notifications and other ids, across CRLF line
// ends and multi-line data), and refuses what is not one.
func TestReadAnswer(t *testing.T) {
	id, _ := jsonrpc.MakeID(float64(3))
	resp := `{"jsonrpc":"2.0","id":3,"result":{"content":[]}}`
	for _, tt := range []struct {
		name, ct, body, err string
	}{
		{"json", "application/json", resp, ""},
		{"json with charset", "application/json; charset=utf-8", resp, ""},
		{"stream", "text/event-stream", "event: message\ndata: " + resp + "\n\n", ""},
		{"notification first", "text/event-stream", "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\nid: 1\r\ndata: " + resp + "\r\n\r\n", ""},
		{"other id first", "text/event-stream", "data: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}\n\ndata: " + resp + "\n\n", ""},
		{"data over two lines", "text/event-stream", "data: {\"jsonrpc\":\"2.0\",\ndata: \"id\":3,\"result\":{}}\n\n", ""},
		{"stream without it", "text/event-stream", "data: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}\n\n", "ended without the response"},
		{"stream cut", "text/event-stream", "data: " + resp, "ended without the response"},
		{"json of another id", "application/json", `{"jsonrpc":"2.0","id":4,"result":{}}`, "not the response"},
		{"not json", "application/json", `{`, "malformed answer"},
		{"malformed event", "text/event-stream", "data: {\n\n", "malformed answer"},
		{"other type", "text/plain", resp, "answer of type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := answerOf(tt.ct, tt.body)
			r.Body = nopCloser{strings.NewReader(tt.body)}
			got, err := readAnswer(r, id)
			switch {
			case tt.err == "" && (err != nil || got == nil || got.ID != id):
				t.Fatalf("readAnswer: %v %v", got, err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("readAnswer: %v, want an error with %q", err, tt.err)
			}
		})
	}
	// A line longer than the reader's buffer, and one over the cap.
	long := `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", 100_000) + `"}]}}`
	r := answerOf("text/event-stream", "")
	r.Body = nopCloser{strings.NewReader("data: " + long + "\n\n")}
	if got, err := readAnswer(r, id); err != nil || got == nil {
		t.Fatalf("long line: %v", err)
	}
	r.Body = nopCloser{strings.NewReader("data: " + strings.Repeat("x", maxUpstreamAnswer+10) + "\n\n")}
	if _, err := readAnswer(r, id); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("oversized line: %v", err)
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// FuzzReadAnswer: no upstream answer crashes the reader, and what it
// returns is a response to the request it waits for.
func FuzzReadAnswer(f *testing.F) {
	f.Add("text/event-stream", []byte("data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n"))
	f.Add("application/json", []byte(`{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"x"}}`))
	f.Add("text/event-stream", []byte("data: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\r\n\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"3\",\"result\":{}}\n\n"))
	id, _ := jsonrpc.MakeID(float64(3))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		r := answerOf(ct, "")
		r.Body = nopCloser{strings.NewReader(string(body))}
		got, err := readAnswer(r, id)
		if err == nil && (got == nil || got.ID != id) {
			t.Fatalf("returned %v for id 3", got)
		}
		if err == nil && !bytes.Contains(body, []byte("3")) {
			t.Fatalf("a response to id 3 from a body without a 3: %q", body)
		}
	})
}

// postCall refuses, naming the failed check, an upstream that answers
// with an HTTP error, with a result that is not one, or with input
// requests that come with content.
func TestPostCallRefusals(t *testing.T) {
	s := &Server{now: time.Now}
	var err error
	if s.stateSealer, err = newStateSealer(); err != nil {
		t.Fatal(err)
	}
	c := &toolCall{principal: &authz.Principal{ChainID: "chain"}, tool: &tool{exposed: "up_t", def: &mcp.Tool{Name: "t"}}, argsHash: "h"}
	for _, tt := range []struct{ name, status, body, want string }{
		{"http error", "500", "boom", "upstream answered 500 Internal Server Error: boom"},
		{"result not an object", "200", `{"jsonrpc":"2.0","id":1,"result":[1]}`, "malformed result"},
		{"input with content", "200", `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"x"}],"inputRequests":{"a":{"method":"elicitation/create","params":{"message":"m","requestedSchema":{"type":"object"}}}}}}`, "named none, or sent content"},
		{"rpc error", "200", `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nope"}}`, `calling "tools/call": nope`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				code := 200
				if tt.status == "500" {
					code = 500
				}
				w.WriteHeader(code)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			s.postIDs.Store(0) // the answers above are to id 1
			_, err := s.postCall(context.Background(), srv.Client(), srv.URL, "2026-07-28", c, json.RawMessage(`{}`), &inputRound{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("postCall: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// A seal opens only for its chain, tool and arguments, before it expires,
// and only as the gateway wrote it.
func TestOpenState(t *testing.T) {
	now := time.Now()
	s := &Server{now: func() time.Time { return now }}
	var err error
	if s.stateSealer, err = newStateSealer(); err != nil {
		t.Fatal(err)
	}
	sealed, err := s.sealState("upstream-state", "chain", "up_t", "h")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s.openState(sealed, "chain", "up_t", "h"); err != nil || st != "upstream-state" {
		t.Fatalf("open: %q %v", st, err)
	}
	for _, tt := range []struct{ name, sealed, chain, tool, args, want string }{
		{"not base64", sealedStatePrefix + "!!!", "chain", "up_t", "h", "malformed seal"},
		{"too short", sealedStatePrefix + "AAAA", "chain", "up_t", "h", "malformed seal"},
		{"another chain", sealed, "other", "up_t", "h", "does not open"},
		{"another tool", sealed, "chain", "up_u", "h", "does not open"},
		{"other arguments", sealed, "chain", "up_t", "g", "does not open"},
	} {
		if _, err := s.openState(tt.sealed, tt.chain, tt.tool, tt.args); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	now = now.Add(InputRoundWindow)
	if _, err := s.openState(sealed, "chain", "up_t", "h"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("at the end of its window: %v, want expired", err)
	}
}
