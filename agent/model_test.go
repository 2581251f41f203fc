package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/ratls"
)

// An attested model endpoint whose evidence the model policy rejects gets
// no request: the TLS handshake fails, and the turn's reply says the model
// was unreachable. The same endpoint under a policy naming its measurement
// answers.
func TestModelClientRATLS(t *testing.T) {
	var got int
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got++
		io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"hi"}}]}`)
	}))
	att, err := sim.NewAttester(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = tls.NewListener(srv.Listener, ratls.NewIssuer(att, nil).ServerConfig())
	srv.Start()
	srv.URL = strings.Replace(srv.URL, "http://", "https://", 1)
	defer srv.Close()
	client := func(policy string) *ModelClient {
		p, err := attest.ParsePolicy([]byte(policy))
		if err != nil {
			t.Fatal(err)
		}
		tc := ratls.ClientConfig(ratls.NewVerifier(verifiers.New(nil), p, nil))
		return &ModelClient{URL: srv.URL + "/v1", Model: "m", HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}}
	}
	other := "allow: [sim]\nsim:\n  measurement: ['" + strings.Repeat("ab", 48) + "']\n"
	_, err = client(other).Complete(context.Background(), &ChatRequest{Messages: []ChatMessage{{Role: "user", Content: ptr("secret")}}})
	var me *ModelError
	if !errors.As(err, &me) || !strings.Contains(me.Msg, "unreachable") || got != 0 {
		t.Fatalf("wrong measurement: %v, %d requests reached the endpoint", err, got)
	}
	mine := "allow: [sim]\nsim:\n  measurement: ['" + attest.Hex(att.Measurement()).String() + "']\n"
	ex, err := client(mine).Complete(context.Background(), &ChatRequest{Messages: []ChatMessage{{Role: "user", Content: ptr("hi")}}})
	if err != nil || ex.Reply.Content == nil || *ex.Reply.Content != "hi" {
		t.Fatalf("right measurement: %v", err)
	}
}
