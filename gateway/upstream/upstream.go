// Package upstream connects the gateway, as an MCP client, to one upstream
// MCP server: a command run over stdio with a minimal environment plus its
// configured variables, or a streamable-HTTP endpoint with its configured
// headers. Values arrive resolved; nothing from the gateway's own clients
// (in particular their bearer tokens) is ever added to an upstream request.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Spec is an upstream with every value resolved.
type Spec struct {
	Name    string
	Command string
	Args    []string
	// Env is added to the minimal environment (PATH, HOME, TMPDIR, LANG).
	Env map[string]string
	URL string
	// Headers are set on every HTTP request to URL.
	Headers map[string]string
	// ProtocolVersion is the MCP revision asked for. If empty, the SDK's
	// newest, falling back to what the upstream answers.
	ProtocolVersion string
}

// inherited names the gateway environment variables a stdio upstream gets.
var inherited = []string{"PATH", "HOME", "TMPDIR", "LANG"}

// Options configure Dial.
type Options struct {
	// Client is the MCP client options (handlers for notifications and
	// server-to-client requests). If nil, none.
	Client *mcp.ClientOptions
	// HTTPClient carries streamable-HTTP requests. If nil, a client with
	// http.DefaultTransport's settings and 64 idle connections per host.
	HTTPClient *http.Client
	// Getenv reads the gateway's environment. If nil, os.Getenv.
	Getenv func(string) string
	// Stderr receives a stdio upstream's standard error. If nil, discarded.
	Stderr *os.File

	// Receiving, if not nil, runs on every request and notification the
	// upstream sends, before the SDK's own handling (which checks, for
	// example, an elicitation's schema against an older revision than the
	// client may support).
	Receiving mcp.Middleware

	// tap, set by Pool, marks what the upstream sends with the call it
	// belongs to (tap.go).
	tap *Conn
	// route, set by Pool, receives a streamable-HTTP upstream's endpoint
	// and its HTTP client without the tap (Conn.StatelessHTTP).
	route *route
}

// route is how to reach a streamable-HTTP upstream: its endpoint and an
// HTTP client that sets its configured headers.
type route struct {
	endpoint string
	http     *http.Client
}

// Dial starts or connects to the upstream and completes the MCP handshake.
func Dial(ctx context.Context, spec *Spec, opts *Options) (*mcp.ClientSession, error) {
	if opts == nil {
		opts = &Options{}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "chatmcp-gateway", Version: "v1"}, opts.Client)
	if opts.Receiving != nil {
		client.AddReceivingMiddleware(opts.Receiving)
	}
	var t mcp.Transport
	switch {
	case spec.Command != "":
		cmd := exec.Command(spec.Command, spec.Args...)
		cmd.Env = Environ(spec.Env, opts.Getenv)
		if opts.Stderr != nil {
			cmd.Stderr = opts.Stderr
		}
		t = &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}
		if opts.tap != nil {
			t = &tapTransport{Transport: t, c: opts.tap}
		}
	case spec.URL != "":
		base := opts.HTTPClient
		if base == nil {
			base = &http.Client{}
		}
		rt := base.Transport
		if rt == nil {
			// Many client sessions share one upstream: keep enough idle
			// connections that concurrent calls do not redial.
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.MaxIdleConnsPerHost = 64
			rt = t
		}
		hc := *base
		hc.Transport = &headerTransport{base: rt, headers: spec.Headers}
		if opts.route != nil {
			plain := hc
			*opts.route = route{endpoint: spec.URL, http: &plain}
		}
		if opts.tap != nil {
			hc.Transport = &tapRT{base: hc.Transport, c: opts.tap}
		}
		t = &mcp.StreamableClientTransport{Endpoint: spec.URL, HTTPClient: &hc, MaxRetries: 1}
	default:
		return nil, errors.New("upstream has neither command nor url")
	}
	var sopts *mcp.ClientSessionOptions
	if spec.ProtocolVersion != "" {
		sopts = &mcp.ClientSessionOptions{ProtocolVersion: spec.ProtocolVersion}
	}
	cs, err := client.Connect(ctx, t, sopts)
	if err != nil {
		return nil, fmt.Errorf("connecting to upstream %s: %w", spec.Name, err)
	}
	return cs, nil
}

// Environ returns the environment of a stdio upstream, sorted.
func Environ(extra map[string]string, getenv func(string) string) []string {
	if getenv == nil {
		getenv = os.Getenv
	}
	env := map[string]string{}
	for _, k := range inherited {
		if v := getenv(k); v != "" {
			env[k] = v
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// headerTransport sets the configured headers, replacing any value the SDK
// set, and removes nothing else: the requests it sees are built by the MCP
// client, never copied from a gateway client's request.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

func (h *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(h.headers) == 0 {
		return h.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	for k, v := range h.headers {
		r.Header.Set(k, v)
	}
	return h.base.RoundTrip(r)
}

// ListTools returns every tool of the upstream, following pagination.
func ListTools(ctx context.Context, cs *mcp.ClientSession) ([]*mcp.Tool, error) {
	var out []*mcp.Tool
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
