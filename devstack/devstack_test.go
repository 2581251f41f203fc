package devstack

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStartServesAndMints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := Start(ctx, &Options{Dir: t.TempDir(), Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	info, err := st.Admin.Info(ctx)
	if err != nil {
		t.Fatalf("admin info over pinned TLS: %v", err)
	}
	want := map[string]bool{"notes_list_notes": true, "notes_read_note": true, "notes_write_note": true}
	for _, name := range info.Tools {
		delete(want, name)
	}
	if len(want) != 0 {
		t.Errorf("gateway tools %v lack %v", info.Tools, want)
	}

	// The relay issues sign-in nonces for the domain clients reach it at.
	resp, err := http.Post(st.RelayURL+"/v1/auth/nonce", "application/json", nil)
	if err != nil {
		t.Fatalf("relay nonce: %v", err)
	}
	defer resp.Body.Close()
	var nonce struct {
		Nonce  string `json:"nonce"`
		Domain string `json:"domain"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&nonce); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("relay nonce: status %d, decode error %v", resp.StatusCode, err)
	}
	if nonce.Nonce == "" || "http://"+nonce.Domain != st.RelayURL || !strings.HasPrefix(st.RelayURL, "http://127.0.0.1:") {
		t.Errorf("relay nonce %+v from %s: want a nonce for the relay's own loopback address", nonce, st.RelayURL)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }
