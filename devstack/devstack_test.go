package devstack

import (
	"context"
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
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }
