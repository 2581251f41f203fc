package notes

import (
	"context"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestNotes(t *testing.T) {
	ctx := context.Background()
	ct, st := mcp.NewInMemoryTransports()
	ss, err := NewServer(NewNotebook()).Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ro := map[string]bool{}
	for _, tl := range tools.Tools {
		ro[tl.Name] = tl.Annotations != nil && tl.Annotations.ReadOnlyHint
	}
	if !ro["list_notes"] || !ro["read_note"] || ro["write_note"] {
		t.Errorf("read-only annotations = %v", ro)
	}
	call := func(name string, args map[string]any) (string, bool) {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatal(err)
		}
		return res.Content[0].(*mcp.TextContent).Text, res.IsError
	}
	tests := []struct {
		name, tool string
		args       map[string]any
		want       string
		isErr      bool
	}{
		{"write", "write_note", map[string]any{"name": "a", "text": "hi"}, `"written":true`, false},
		{"read back", "read_note", map[string]any{"name": "a"}, `"text":"hi"`, false},
		{"list", "list_notes", map[string]any{}, `["a","welcome"]`, false},
		{"missing", "read_note", map[string]any{"name": "zz"}, "no note", true},
		{"nameless write", "write_note", map[string]any{"text": "x"}, "name", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, isErr := call(tt.tool, tt.args)
			if isErr != tt.isErr || !strings.Contains(got, tt.want) {
				t.Errorf("%s = %q (error %v), want %q (error %v)", tt.tool, got, isErr, tt.want, tt.isErr)
			}
		})
	}
}
