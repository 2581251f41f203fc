// Package cli implements the chatmcp command: its subcommands, exit codes and
// error format. It is importable so tests run the CLI in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes shared by every subcommand. Subcommands document which they use.
const (
	ExitOK       = 0
	ExitUsage    = 1 // usage or I/O error
	ExitInvalid  = 2 // evidence or input is invalid
	ExitRejected = 3 // a policy rejected valid input
)

// Env is what a command may touch of the outside world. Tests fill it with
// buffers and fixed values; Main fills it from the process.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads an environment variable. If nil, os.Getenv.
	Getenv func(string) string
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

func (e *Env) getenv(k string) string {
	if e.Getenv == nil {
		return os.Getenv(k)
	}
	return e.Getenv(k)
}

func (e *Env) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// ExitError carries an exit code and an optional hint with an error.
type ExitError struct {
	Code int
	Err  error
	Hint string
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// exitf returns an *ExitError with code and a formatted message.
func exitf(code int, format string, args ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// Main runs chatmcp with args (without the program name) and returns the
// process exit code. Errors are printed as "chatmcp: error: …" lines.
func Main(ctx context.Context, args []string, env *Env) int {
	root := NewRoot(env)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitUsage
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintf(env.Stderr, "chatmcp: error: %s\n", msg)
	if ee != nil && ee.Hint != "" {
		fmt.Fprintf(env.Stderr, "chatmcp: hint: %s\n", ee.Hint)
	}
	return code
}

// NewRoot builds the command tree.
func NewRoot(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "chatmcp",
		Short:         "ChatMCP: attested MCP gateway, key broker and encrypted messaging",
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: err, Hint: "see '" + c.CommandPath() + " --help'"}
	})
	root.AddCommand(
		newAttestCmd(env),
		newChatCmd(env),
		newWalletCmd(env),
		newTokenCmd(env),
		newApprovalsCmd(env),
		newToolsCmd(env),
		newConnectCmd(env),
		newDevCmd(env),
		newAuditCmd(env),
		newKBSCmd(env),
		newWebCmd(env),
		newSignerCmd(env),
	)
	return root
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Version == "" {
		return "(unknown)"
	}
	return bi.Main.Version
}
