package wire

import (
	"errors"
	"strings"
	"testing"
)

type sample struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"ok", `{"name":"a","count":2}`, ""},
		{"unknown member", `{"name":"a","extra":1}`, "unknown"},
		{"duplicate name", `{"name":"a","name":"b"}`, "duplicate"},
		{"trailing data", `{"name":"a"} {}`, "invalid"},
		{"too deep", `{"name":"a","count":` + strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1) + `}`, "nesting"},
		{"not json", `nope`, "invalid"},
		{"wrong type", `{"count":"x"}`, "count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s sample
			err := Decode([]byte(tt.in), &s)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if s.Name != "a" || s.Count != 2 {
					t.Fatalf("Decode = %+v", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadLimit(t *testing.T) {
	var s sample
	err := Read(strings.NewReader(`{"name":"aaaaaaaaaaaaaaaaaaaaa"}`), 10, &s)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read error = %v, want ErrTooLarge", err)
	}
	if err := Read(strings.NewReader(`{"name":"a","count":2}`), 100, &s); err != nil {
		t.Fatalf("Read: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"name":"a","count":2}`))
	f.Add([]byte(`{"name":"a","name":"b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sample
		_ = Decode(data, &s)
	})
}
