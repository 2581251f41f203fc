package gateway

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
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
