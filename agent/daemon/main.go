package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/chatmcp/chatmcp/internal/daemon"
	"github.com/chatmcp/chatmcp/internal/ops"
)

// Main parses the chatmcp-agent command line (without the program name)
// into Options, runs the agent until ctx is done and returns the process
// exit code.
//
//	chatmcp-agent --config FILE [--dev] [--metrics-listen ADDR] [--log-format text|json]
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs, of := daemon.FlagSet("chatmcp-agent", stderr)
	var o Options
	fs.StringVar(&o.Config, "config", "", "configuration `FILE` (YAML, see docs/agent.md)")
	fs.BoolVar(&o.Dev, "dev", false, "INSECURE: simulated TEE evidence; accept policies that allow it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "chatmcp-agent: error:", err)
		return 1
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	o.Stderr = stderr
	var err error
	o.Readiness = ops.NewReadiness("relay")
	var stop func()
	if o.Logger, stop, err = daemon.StartOps("chatmcp-agent", stderr, of, o.Readiness, nil); err != nil {
		return fail(err)
	}
	defer stop()
	if err := Run(ctx, &o); err != nil {
		return fail(err)
	}
	return 0
}
