package cli

import (
	"context"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript scripts run "chatmcp" in a child process that
// executes this test binary's copy of Main.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"chatmcp": func() {
			os.Exit(Main(context.Background(), os.Args[1:], &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
		},
	})
}
