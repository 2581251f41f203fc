package edge

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var testCodes = Codes{Malformed: "malformed", TooLarge: "too large", Internal: "internal"}

// TestWriteError: a refusal is sent as {error, reason} with its status; an
// internal error is a 500 without its cause, which goes to the log only.
func TestWriteError(t *testing.T) {
	type stamps struct {
		ErrorBody `json:",inline"`
		Extra     []string `json:"extra"`
	}
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		body       string
		logs, hide string
	}{
		{"refusal", Errorf(404, "not found", "no secret named %q", "s"), 404, `{"error":"no secret named \"s\"","reason":"not found"}`, "", ""},
		{"wrapped refusal", errors.Join(errors.New("ctx"), Errorf(409, "conflict", "retry")), 409, `{"error":"retry","reason":"conflict"}`, "", ""},
		{"internal", errors.New("disk on fire at /var/lib/x"), 500, `{"error":"internal error","reason":"internal"}`, "disk on fire", ""},
		{"refusal with cause", Wrap(503, "unavailable", errors.New("db down"), "try later"), 503, `{"error":"try later","reason":"unavailable"}`, "db down", ""},
		{"own body", &Error{Status: 402, Reason: "stamp", Msg: "pay", Body: stamps{ErrorBody{"pay", "stamp"}, []string{"a"}}}, 402, `{"error":"pay","reason":"stamp","extra":["a"]}`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			s := &Server{Name: "test", Codes: testCodes, Logger: slog.New(slog.NewTextHandler(&log, nil))}
			w := httptest.NewRecorder()
			s.WriteError(w, httptest.NewRequest("GET", "/x", nil), tc.err)
			if w.Code != tc.status || w.Body.String() != tc.body {
				t.Errorf("answer %d %s, want %d %s", w.Code, w.Body, tc.status, tc.body)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if tc.logs == "" && log.Len() > 0 {
				t.Errorf("a plain refusal was logged: %s", log.String())
			}
			if tc.logs != "" && !strings.Contains(log.String(), tc.logs) {
				t.Errorf("log %q does not carry the cause %q", log.String(), tc.logs)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("Errorf without a reason did not panic")
		}
	}()
	Errorf(400, "", "x")
}

func TestDecodeJSON(t *testing.T) {
	s := &Server{Codes: testCodes}
	type body struct {
		A int `json:"a"`
	}
	for _, tc := range []struct {
		name, in       string
		status         int
		reason, saying string
	}{
		{"ok", `{"a":1}`, 0, "", ""},
		{"unknown member", `{"a":1,"admin":true}`, 400, "malformed", "malformed request"},
		{"duplicate", `{"a":1,"a":2}`, 400, "malformed", "duplicate"},
		{"trailing", `{"a":1} {}`, 400, "malformed", "malformed request"},
		{"too large", `{"a":` + strings.Repeat(" ", 64) + `1}`, 413, "too large", "larger than 64 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v body
			err := s.DecodeJSON(httptest.NewRequest("POST", "/", strings.NewReader(tc.in)), 64, &v)
			if tc.status == 0 {
				if err != nil || v.A != 1 {
					t.Fatalf("DecodeJSON = %v, %+v", err, v)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != tc.status || e.Reason != tc.reason || !strings.Contains(e.Msg, tc.saying) {
				t.Fatalf("DecodeJSON = %#v, want %d %s saying %q", err, tc.status, tc.reason, tc.saying)
			}
		})
	}
}

func TestBearer(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"Bearer abc", "abc"},
		{"bearer abc", "abc"},
		{"Bearer  abc ", "abc"},
		{"", ""},
		{"Bearer ", ""},
		{"Bearer    ", ""},
		{"Basic abc", ""},
		{"Bearerabc", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		got, err := Bearer(r)
		if got != tc.want || (tc.want == "") != errors.Is(err, ErrNoBearer) {
			t.Errorf("Bearer(%q) = %q, %v; want %q", tc.header, got, err, tc.want)
		}
	}
}

// TestClient: answers decode strictly (or leniently when asked); an error
// answer is an *APIError with the service's reason code, or ReasonHTTP
// when it carries none.
func TestClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Extra") != "1" {
				w.WriteHeader(400)
				return
			}
			w.Write([]byte(`{"a":1}`))
		case "/newer":
			w.Write([]byte(`{"a":1,"b":2}`))
		case "/big":
			w.Write([]byte(`{"a":1` + strings.Repeat(" ", 100) + `}`))
		case "/refused":
			w.WriteHeader(402)
			w.Write([]byte(`{"error":"pay","reason":"stamp","extra":[1]}`))
		case "/proxy":
			w.WriteHeader(502)
			w.Write([]byte(`<html>bad gateway</html>`))
		case "/none":
			w.WriteHeader(204)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	type out struct {
		A int `json:"a"`
	}
	c := &Client{Service: "svc", HTTP: srv.Client(), MaxResponse: 64}
	var o out
	call := &Call{Method: "POST", URL: srv.URL + "/ok", Token: "tok", Header: http.Header{"X-Extra": {"1"}}, In: map[string]int{"q": 1}, Out: &o}
	if err := c.Call(ctx, call); err != nil || o.A != 1 {
		t.Errorf("ok: %v, %+v", err, o)
	}
	if err := c.Do(ctx, "GET", srv.URL+"/none", "", nil, nil); err != nil {
		t.Errorf("204: %v", err)
	}
	if err := c.Do(ctx, "GET", srv.URL+"/newer", "", nil, &o); err == nil || !strings.Contains(err.Error(), "svc: malformed response to GET /newer") {
		t.Errorf("strict client took an unknown member: %v", err)
	}
	lenient := *c
	lenient.AllowUnknownMembers = true
	if err := lenient.Do(ctx, "GET", srv.URL+"/newer", "", nil, &o); err != nil {
		t.Errorf("lenient client: %v", err)
	}
	if err := c.Do(ctx, "GET", srv.URL+"/big", "", nil, &o); err == nil || !strings.Contains(err.Error(), "exceeds 64 bytes") {
		t.Errorf("oversized answer: %v", err)
	}
	err := c.Do(ctx, "GET", srv.URL+"/refused", "", nil, &o)
	want := &APIError{Service: "svc", Status: 402, Reason: "stamp", Msg: "pay", Body: []byte(`{"error":"pay","reason":"stamp","extra":[1]}`)}
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("refusal: %v", err)
	}
	if diff := cmp.Diff(want, ae); diff != "" {
		t.Errorf("refusal (-want +got):\n%s", diff)
	}
	if err.Error() != "svc refused (stamp): pay" || !IsReason(err, "other", "stamp") || IsReason(err, "other") {
		t.Errorf("refusal reads %q", err)
	}
	err = c.Do(ctx, "GET", srv.URL+"/proxy", "", nil, &o)
	if r, ok := ReasonOf(err); !ok || r != ReasonHTTP || !strings.Contains(err.Error(), "HTTP 502") {
		t.Errorf("answer without a reason: %v", err)
	}
	if _, ok := ReasonOf(errors.New("local")); ok {
		t.Error("ReasonOf found a reason in a local error")
	}
	if err := c.Do(ctx, "GET", "http://127.0.0.1:1/", "", nil, nil); err == nil || !strings.HasPrefix(err.Error(), "svc unreachable") {
		t.Errorf("transport failure: %v", err)
	}
}
