// Package notes is a tiny example MCP server (an in-memory notebook) used by
// `chatmcp dev`, the end-to-end tests and the gateway benchmark: two
// read-only tools and one destructive tool, so both sides of the gateway's
// confirmation gate can be seen. It is not meant for real data.
package notes

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Notebook holds notes by name. It is safe for concurrent use.
type Notebook struct {
	mu    sync.Mutex
	notes map[string]string
}

// NewNotebook returns a notebook with one welcome note.
func NewNotebook() *Notebook {
	return &Notebook{notes: map[string]string{"welcome": "Hello from the ChatMCP example notes server."}}
}

// ListIn is list_notes' input (none).
type ListIn struct{}

// ListOut is list_notes' output.
type ListOut struct {
	Names []string `json:"names"`
}

// ReadIn is read_note's input.
type ReadIn struct {
	Name string `json:"name" jsonschema:"the note's name"`
}

// ReadOut is read_note's output.
type ReadOut struct {
	Text string `json:"text"`
}

// WriteIn is write_note's input.
type WriteIn struct {
	Name string `json:"name" jsonschema:"the note's name"`
	Text string `json:"text" jsonschema:"the new text; replaces any old text"`
}

// WriteOut is write_note's output.
type WriteOut struct {
	Written bool `json:"written"`
}

// NewServer returns an MCP server exposing nb as list_notes, read_note
// (read-only) and write_note (destructive: it overwrites).
func NewServer(nb *Notebook) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "chatmcp-example-notes", Version: "v1"}, nil)
	destructive := true
	mcp.AddTool(s, &mcp.Tool{
		Name: "list_notes", Description: "List the names of all notes.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, _ ListIn) (*mcp.CallToolResult, ListOut, error) {
		nb.mu.Lock()
		defer nb.mu.Unlock()
		names := make([]string, 0, len(nb.notes))
		for n := range nb.notes {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, ListOut{Names: names}, nil
	})
	mcp.AddTool(s, &mcp.Tool{
		Name: "read_note", Description: "Read one note by name.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in ReadIn) (*mcp.CallToolResult, ReadOut, error) {
		nb.mu.Lock()
		defer nb.mu.Unlock()
		t, ok := nb.notes[in.Name]
		if !ok {
			return nil, ReadOut{}, fmt.Errorf("no note named %q", in.Name)
		}
		return nil, ReadOut{Text: t}, nil
	})
	mcp.AddTool(s, &mcp.Tool{
		Name: "write_note", Description: "Create or overwrite a note.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &destructive},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in WriteIn) (*mcp.CallToolResult, WriteOut, error) {
		if in.Name == "" {
			return nil, WriteOut{}, fmt.Errorf("a note needs a name")
		}
		nb.mu.Lock()
		defer nb.mu.Unlock()
		nb.notes[in.Name] = in.Text
		return nil, WriteOut{Written: true}, nil
	})
	return s
}

// Handler serves s over MCP streamable HTTP.
func Handler(s *mcp.Server) http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
}
