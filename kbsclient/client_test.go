package kbsclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/kbsapi"
)

// TestRefusals checks how the client reports what a KBS (here a fake)
// answers: a refusal as *Error with the KBS's reason, anything else
// without trusting it.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		want    *Error
		wantErr string
	}{
		{"refusal", 403, `{"reason":"revoked","error":"secret \"s\" is revoked"}`, &Error{Status: 403, Reason: kbsapi.ReasonRevoked, Msg: `secret "s" is revoked`}, ""},
		{"not JSON", 502, `<html>bad gateway</html>`, &Error{Status: 502, Reason: "http", Msg: "HTTP 502"}, ""},
		{"no reason", 500, `{"error":"x"}`, &Error{Status: 500, Reason: "http", Msg: "HTTP 500"}, ""},
		{"oversized", 200, `{"secrets":[` + strings.Repeat(" ", kbsapi.MaxAdminBody) + `]}`, nil, "exceeds"},
		{"trailing data", 200, `{"secrets":[]} {}`, nil, "malformed response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tok" {
					t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			_, err := (&AdminClient{BaseURL: srv.URL + "/", Token: "tok"}).List(context.Background())
			if tc.want != nil {
				var ke *Error
				if !errors.As(err, &ke) {
					t.Fatalf("List = %v, want a *Error", err)
				}
				// Service and Body (the answer as received) are the edge's
				// (internal/edge); the refusal is Status, Reason and Msg.
				if diff := cmp.Diff(tc.want, ke, cmpopts.IgnoreFields(Error{}, "Service", "Body")); diff != "" {
					t.Errorf("refusal (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("List = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

// TestFetchChecksRelease checks the client refuses a release that is not
// for the secret it asked, or that does not open with its key, and never
// sends evidence for a malformed challenge.
func TestFetchChecksRelease(t *testing.T) {
	a, err := sim.NewAttester(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		challenge string
		release   string
		wantErr   string
	}{
		{"short nonce", `{"nonce":"AAAA","expires":"2030-01-01T00:00:00Z"}`, "", "challenge nonce of 3 bytes"},
		{"other secret", `{"nonce":"` + strings.Repeat("A", 43) + `=","expires":"2030-01-01T00:00:00Z"}`, `{"name":"other","version":1,"enc":"","ciphertext":""}`, `released "other", asked for "s"`},
		{"bad enc", `{"nonce":"` + strings.Repeat("A", 43) + `=","expires":"2030-01-01T00:00:00Z"}`, `{"name":"s","version":1,"enc":"AAAA","ciphertext":"AAAA"}`, "opening release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attested := false
			mux := http.NewServeMux()
			mux.HandleFunc("POST "+kbsapi.PathRequest, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(tc.challenge)) })
			mux.HandleFunc("POST "+kbsapi.PathAttest, func(w http.ResponseWriter, r *http.Request) {
				attested = true
				w.Write([]byte(tc.release))
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			_, err := (&Client{BaseURL: srv.URL, Attester: a}).Fetch(context.Background(), "s")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Fetch = %v, want an error with %q", err, tc.wantErr)
			}
			if tc.release == "" && attested {
				t.Error("evidence sent for a malformed challenge")
			}
		})
	}
	if _, err := (&Client{BaseURL: "http://127.0.0.1:1"}).Fetch(context.Background(), "s"); err == nil {
		t.Error("Fetch without an attester succeeded")
	}
}
