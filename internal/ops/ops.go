// Package ops is the daemons' operational surface, apart from their APIs:
// the --metrics-listen and --log-format flags, an HTTP server for /healthz,
// /readyz and Prometheus /metrics on its own address, named readiness checks,
// and the metric sets each daemon records into its own registry. Labels
// carry only fixed words, route patterns and catalogued tool names, never a
// secret, an argument or message content.
package ops

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Flags are the operational flags every daemon takes.
type Flags struct {
	// MetricsListen is the address of the ops server. If empty, there is
	// none: no /healthz, /readyz or /metrics.
	MetricsListen string
	// LogFormat is "text" or "json". If empty, text.
	LogFormat string
}

// Register defines --metrics-listen and --log-format on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.MetricsListen, "metrics-listen", "", "serve /healthz, /readyz and Prometheus /metrics on `ADDR` (off if empty)")
	fs.StringVar(&f.LogFormat, "log-format", "text", "log format: text or json (slog)")
}

// Logger returns a logger writing to w in the format f names.
func (f *Flags) Logger(w io.Writer) (*slog.Logger, error) {
	return NewLogger(w, f.LogFormat, nil)
}

// NewLogger returns a slog logger writing to w as "text" (or "") or "json".
// If opts is nil, slog's defaults (level Info).
func NewLogger(w io.Writer, format string, opts *slog.HandlerOptions) (*slog.Logger, error) {
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// Registry is a daemon's own Prometheus registry.
type Registry = prometheus.Registry

// NewRegistry returns a registry for one daemon, holding the Go runtime and
// process collectors. Each daemon has its own (never the global default),
// so `chatmcp dev` can run three in one process.
func NewRegistry() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
