package cli

import (
	"encoding/json"
	"fmt"
	"io"
)

// printJSONLine writes v as one line of JSON, for --json output that
// scripts read.
func printJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
