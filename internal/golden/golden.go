// Package golden pins the wire encoding of a service's API types in a
// committed txtar archive (testdata/wire.txtar of each API package), in the
// manner of go-sdk's conformance goldens: a change to a JSON body is a
// reviewed diff of that file, refreshed with `go test ./<api package>
// -update`. It is for tests only.
package golden

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/tools/txtar"

	"github.com/chatmcp/chatmcp/internal/wire"
)

// Case is one representative value of a wire type, filed under Name.
type Case struct {
	Name  string
	Value any
}

// Marshal encodes v as the services send it (go-json-experiment,
// deterministic), indented for review.
func Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v, json.Deterministic(true), jsontext.Multiline(true), jsontext.WithIndent("  "))
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Check marshals every case into an archive with comment as its header and
// compares it with file; with update it rewrites file instead. It also
// decodes each encoding strictly (internal/wire, as the clients and
// servers decode) into a fresh value of the case's type and checks that it
// encodes the same again, so nothing a peer sends is refused or lost by
// the other side.
func Check(t *testing.T, file, comment string, cases []Case, update bool) {
	t.Helper()
	ar := &txtar.Archive{Comment: []byte(comment)}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			t.Fatalf("two cases named %q", c.Name)
		}
		seen[c.Name] = true
		b, err := Marshal(c.Value)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if err := roundTrip(c.Value, b); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
		ar.Files = append(ar.Files, txtar.File{Name: c.Name, Data: b})
	}
	got := txtar.Format(ar)
	if update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	wantAr := txtar.Parse(want)
	wantFiles := map[string][]byte{}
	for _, f := range wantAr.Files {
		wantFiles[f.Name] = f.Data
	}
	for _, f := range ar.Files {
		w, ok := wantFiles[f.Name]
		switch {
		case !ok:
			t.Errorf("%s: new wire type, not in %s:\n%s", f.Name, file, f.Data)
		case !bytes.Equal(w, f.Data):
			t.Errorf("%s: the wire encoding changed:\n--- %s\n%s--- now\n%s", f.Name, file, w, f.Data)
		}
		delete(wantFiles, f.Name)
	}
	for name := range wantFiles {
		t.Errorf("%s: in %s but no longer tested", name, file)
	}
	if !t.Failed() {
		t.Errorf("%s differs (comment or order); review, then run the test with -update", file)
	} else {
		t.Logf("if the change is intended, review it, then run the test with -update")
	}
}

func roundTrip(v any, b []byte) error {
	typ := reflect.TypeOf(v)
	ptr := reflect.New(typ)
	if err := wire.Decode(b, ptr.Interface()); err != nil {
		return fmt.Errorf("a strict decoder refuses its encoding: %w", err)
	}
	again, err := Marshal(ptr.Elem().Interface())
	if err != nil {
		return err
	}
	if !bytes.Equal(again, b) {
		return fmt.Errorf("decoding and encoding again gives\n%s\nwant\n%s", again, b)
	}
	return nil
}
