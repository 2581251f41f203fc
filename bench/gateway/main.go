// Command gateway-bench measures what the ChatMCP gateway costs on the
// tools/call path: p50/p99 latency and calls per second at 1 and 8
// concurrent MCP sessions against one go-sdk streamable-HTTP upstream reached
// three ways in the same run (directly, through a bare
// httputil.ReverseProxy, through the gateway with tokens, a Cedar policy,
// the audit log and RA-TLS on), the same for a stdio upstream, and the
// gateway's idle memory and memory per session (RSS of its process).
//
//	go run ./bench/gateway [-calls 2000] [-sessions-mem 1000] [-protocol 2025-11-25|2026-07-28]
//
// The stdio floor is npm's mcp-proxy (bench/gateway/npm, installed by
// internal/npmdeps on first run), a bare streamable-HTTP-to-stdio bridge
// in front of the same stdio server.
//
// The proxy and the gateway each run in a child process (this binary
// re-executed), as they would in production; the upstream and the
// measuring clients run in this process.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/internal/npmdeps"
	"github.com/chatmcp/chatmcp/ratls"
)

const modeEnv = "CHATMCP_BENCH_MODE"

func main() {
	var err error
	switch os.Getenv(modeEnv) {
	case "stdio-server":
		err = newUpstream().Run(context.Background(), &mcp.StdioTransport{})
	case "proxy":
		err = runProxy(os.Getenv("CHATMCP_BENCH_TARGET"))
	case "gateway":
		err = runGateway(os.Getenv("CHATMCP_BENCH_CONFIG"))
	default:
		err = bench()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway-bench:", err)
		os.Exit(1)
	}
}

type echoIn struct {
	Text string `json:"text"`
}

type echoOut struct {
	Text string `json:"text"`
}

// newUpstream is the benchmark's MCP server: one read-only echo tool.
func newUpstream() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "bench-upstream", Version: "v1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echoes its text.", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
			return nil, echoOut{Text: in.Text}, nil
		})
	return s
}

// listen serves h on a loopback port and announces it on stdout (for the
// parent) when announce is set.
func listenAndServe(h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	return (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

// runProxy is the baseline hop: a bare reverse proxy, streaming.
func runProxy(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	return listenAndServe(rp)
}

// runGateway runs the gateway on the simulated TEE with the given config.
func runGateway(path string) error {
	cfg, err := gateway.LoadConfig(path)
	if err != nil {
		return err
	}
	att, err := sim.NewAttester(nil)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // as chatmcp-gateway does (its main)
	}
	if prof := os.Getenv("CHATMCP_BENCH_CPUPROFILE"); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// SIGUSR1 (from the parent, for the memory figures only): collect and
	// return freed memory to the OS, so that RSS shows what is retained
	// rather than the GC's headroom (GOGC=400 lets the heap grow to five
	// times what is live before a collection).
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			debug.FreeOSMemory()
		}
	}()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gw, err := gateway.New(ctx, cfg, &gateway.Options{Attester: att, Dev: true, Logger: quiet,
		NoFastPath: os.Getenv("CHATMCP_BENCH_NO_FAST_PATH") == "true"})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	fmt.Printf("MEASUREMENT %x\n", att.Measurement())
	return gw.Serve(ctx, ln)
}

// child is a re-executed copy of this binary in some mode.
type child struct {
	cmd         *exec.Cmd
	addr        string
	measurement string
}

func startChild(mode string, env ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), append([]string{modeEnv + "=" + mode}, env...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "LISTEN" {
			c.addr = f[1]
		}
		if len(f) == 2 && f[0] == "MEASUREMENT" {
			c.measurement = f[1]
		}
		if c.addr != "" && (mode != "gateway" || c.measurement != "") {
			go io.Copy(io.Discard, out)
			return c, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("%s child exited before listening", mode)
}

func (c *child) stop() {
	c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// retainedKB has the child collect garbage and return freed memory to the
// OS (SIGUSR1, runGateway), then reads its RSS.
func (c *child) retainedKB() (int, error) {
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return 0, err
	}
	time.Sleep(500 * time.Millisecond)
	return c.rssKB()
}

// rssKB reads the child's resident set size.
func (c *child) rssKB() (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

// target is one way to reach the upstream.
type target struct {
	name    string
	connect func(ctx context.Context) (*mcp.ClientSession, error)
	tool    string
}

// protocol is the MCP revision every measuring client speaks (-protocol).
var protocol = "2025-11-25"

func httpTarget(name, endpoint string, rt http.RoundTripper, tool string) target {
	hc := &http.Client{Transport: rt}
	return target{name: name, tool: tool, connect: func(ctx context.Context) (*mcp.ClientSession, error) {
		c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "v1"}, nil)
		return c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1},
			&mcp.ClientSessionOptions{ProtocolVersion: protocol})
	}}
}

// upstreamHandler serves srv at the benchmark's protocol: with -protocol
// 2026-07-28 to clients of both generations, as the gateway does
// (stateless for 2026-07-28 requests outside a session); otherwise as a
// session server only, so that every path, the gateway's upstream client
// included, speaks 2025-11-25 to it.
func upstreamHandler(srv *mcp.Server) http.Handler {
	get := func(*http.Request) *mcp.Server { return srv }
	stateful := mcp.NewStreamableHTTPHandler(get, nil)
	if protocol < gateway.ProtocolStateless {
		return stateful
	}
	stateless := mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{Stateless: true})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Session-Id") == "" && r.Header.Get("Mcp-Protocol-Version") >= gateway.ProtocolStateless {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	})
}

// startMCPProxy starts npm's mcp-proxy (bench/gateway/npm, installed by
// internal/npmdeps) bridging streamable HTTP to this binary as a stdio
// server: the floor of the gateway's stdio path.
func startMCPProxy(ctx context.Context, self string) (addr string, stop func(), err error) {
	dir, err := npmDir()
	if err != nil {
		return "", nil, err
	}
	if _, err := npmdeps.Install(ctx, dir); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("node", filepath.Join(dir, "node_modules", "mcp-proxy", "dist", "bin", "mcp-proxy.mjs"),
		"--host", "127.0.0.1", "--port", port, "--server", "stream", "--no-eventStore", "--", self)
	cmd.Env = append(os.Environ(), modeEnv+"=stdio-server")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
	// Ready when it accepts connections.
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr, stop, nil
		}
		if i == 300 {
			stop()
			return "", nil, fmt.Errorf("mcp-proxy did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// npmDir finds bench/gateway/npm from the working directory (the module
// root, or this directory).
func npmDir() (string, error) {
	for _, d := range []string{"bench/gateway/npm", "npm"} {
		if _, err := os.Stat(filepath.Join(d, npmdeps.LockFile)); err == nil {
			return filepath.Abs(d)
		}
	}
	return "", fmt.Errorf("bench/gateway/npm/%s not found: run from the module root", npmdeps.LockFile)
}

// stats of one measurement.
type stats struct {
	p50, p99 time.Duration
	rate     float64
}

func measure(ctx context.Context, t target, sessions, calls int) (stats, error) {
	css := make([]*mcp.ClientSession, sessions)
	for i := range css {
		cs, err := t.connect(ctx)
		if err != nil {
			return stats{}, fmt.Errorf("%s: connect: %w", t.name, err)
		}
		defer cs.Close()
		css[i] = cs
	}
	call := func(cs *mcp.ClientSession) (time.Duration, error) {
		start := time.Now()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: t.tool, Arguments: map[string]any{"text": "ping"}})
		if err == nil && res.IsError {
			err = fmt.Errorf("tool error: %v", res.Content)
		}
		return time.Since(start), err
	}
	for _, cs := range css { // warm up connections, caches, pins
		for range 50 {
			if _, err := call(cs); err != nil {
				return stats{}, fmt.Errorf("%s: warm-up: %w", t.name, err)
			}
		}
	}
	lat := make([][]time.Duration, sessions)
	errs := make([]error, sessions)
	var wg sync.WaitGroup
	start := time.Now()
	for i, cs := range css {
		wg.Go(func() {
			for range calls {
				d, err := call(cs)
				if err != nil {
					errs[i] = err
					return
				}
				lat[i] = append(lat[i], d)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	var all []time.Duration
	for i := range lat {
		if errs[i] != nil {
			return stats{}, fmt.Errorf("%s: %w", t.name, errs[i])
		}
		all = append(all, lat[i]...)
	}
	slices.Sort(all)
	return stats{p50: all[len(all)/2], p99: all[len(all)*99/100], rate: float64(len(all)) / wall.Seconds()}, nil
}

func bench() error {
	calls := flag.Int("calls", 2000, "timed tools/call in total per measurement, split over the sessions")
	memSessions := flag.Int("sessions-mem", 1000, "concurrent sessions opened through the gateway: each calls once, all at once, then they stay idle to measure memory per session")
	flag.StringVar(&protocol, "protocol", protocol, "MCP revision of every measuring client: 2025-11-25 (sessions) or 2026-07-28 (stateless)")
	dataParent := flag.String("data", "", "directory for the gateway's data (audit log); default a temporary directory")
	profile := flag.String("cpuprofile", "", "write the gateway process's CPU profile here")
	noFast := flag.Bool("no-fast-path", false, "run the gateway with its fast path off (gateway.Options.NoFastPath): every 2026-07-28 tools/call through the SDK's stateless handler")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx := context.Background()

	// The upstream, in this process.
	up := newUpstream()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go (&http.Server{Handler: upstreamHandler(up)}).Serve(ln)
	upURL := "http://" + ln.Addr().String() + "/mcp"

	proxy, err := startChild("proxy", "CHATMCP_BENCH_TARGET=http://"+ln.Addr().String())
	if err != nil {
		return err
	}
	defer proxy.stop()

	dir, err := os.MkdirTemp(*dataParent, "chatmcp-gateway-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	self, _ := os.Executable()
	cedar := filepath.Join(dir, "policy.cedar")
	os.WriteFile(cedar, []byte(`permit (principal, action == Action::"call", resource);
forbid (principal, action == Action::"call", resource == Tool::"http_never");
`), 0o600)
	cfgPath := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data: %q
policy: %q
upstreams:
  http:
    url: %q
  stdio:
    command: %q
    env:
      %s: stdio-server
`, filepath.Join(dir, "data"), cedar, upURL, self, modeEnv)), 0o600)
	gw, err := startChild("gateway", "CHATMCP_BENCH_CONFIG="+cfgPath, "CHATMCP_BENCH_CPUPROFILE="+*profile,
		"CHATMCP_BENCH_NO_FAST_PATH="+strconv.FormatBool(*noFast))
	if err != nil {
		return err
	}
	defer gw.stop()
	time.Sleep(500 * time.Millisecond)
	idleKB, _ := gw.rssKB()
	idleRetainedKB, _ := gw.retainedKB()

	// Clients trust the gateway by RA-TLS under a policy allowing exactly
	// its simulated measurement, as chatmcp connect does.
	pol, err := attest.ParsePolicy([]byte("allow: [sim]\nsim:\n  measurement: [" + gw.measurement + "]\n"))
	if err != nil {
		return err
	}
	v := ratls.NewVerifier(verifiers.New(nil), pol, nil)
	gwURL := "https://" + gw.addr
	tlsTransport := &http.Transport{TLSClientConfig: ratls.ClientConfig(v), MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: true}
	adminTok, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		return err
	}
	admin := &gwclient.Admin{BaseURL: gwURL, Token: strings.TrimSpace(string(adminTok)), HTTP: &http.Client{Transport: tlsTransport}}
	m, err := admin.Mint(ctx, gwclient.MintRequest{Tools: []string{"http_*", "stdio_*"}, TTL: "1h", Subject: "bench"})
	if err != nil {
		return fmt.Errorf("minting: %w", err)
	}
	plain := &http.Transport{MaxIdleConnsPerHost: 64}
	gwRT := edge.BearerTransport(m.Token, tlsTransport)
	bridgeAddr, stopBridge, err := startMCPProxy(ctx, self)
	if err != nil {
		return fmt.Errorf("stdio floor (mcp-proxy): %w", err)
	}
	defer stopBridge()

	targets := []target{
		httpTarget("direct", upURL, plain, "echo"),
		httpTarget("reverse proxy", "http://"+proxy.addr+"/mcp", plain, "echo"),
		httpTarget("gateway", gwURL+"/mcp", gwRT, "http_echo"),
		{name: "stdio direct", tool: "echo", connect: func(ctx context.Context) (*mcp.ClientSession, error) {
			cmd := exec.Command(self)
			cmd.Env = append(os.Environ(), modeEnv+"=stdio-server")
			return mcp.NewClient(&mcp.Implementation{Name: "bench"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd},
				&mcp.ClientSessionOptions{ProtocolVersion: protocol})
		}},
		httpTarget("mcp-proxy → stdio", "http://"+bridgeAddr+"/mcp", plain, "echo"),
		httpTarget("gateway → stdio", gwURL+"/mcp", gwRT, "stdio_echo"),
	}
	results := map[string]map[int]stats{}
	for _, sessions := range []int{1, 8} {
		for _, t := range targets {
			s, err := measure(ctx, t, sessions, *calls/sessions)
			if err != nil {
				return err
			}
			if results[t.name] == nil {
				results[t.name] = map[int]stats{}
			}
			results[t.name][sessions] = s
			fmt.Fprintf(os.Stderr, "%-16s sessions=%d p50=%v p99=%v calls/s=%.0f\n", t.name, sessions, s.p50, s.p99, s.rate)
		}
	}

	fmt.Printf("Data directory (audit log): %s\n\n", *dataParent)
	// Many sessions at once: open them concurrently, each makes one call at
	// the same moment, then they stay open and idle for the memory figure.
	before, _ := gw.rssKB()
	beforeRetained, _ := gw.retainedKB()
	var afterRetained int
	held, manyErrs, manyWall, after := manySessions(ctx, targets[2], *memSessions, func() (int, error) {
		rss, err := gw.rssKB()
		afterRetained, _ = gw.retainedKB()
		return rss, err
	})
	for _, cs := range held {
		cs.Close()
	}

	fmt.Printf("| path | sessions | p50 | p99 | calls/s | p50 ÷ proxy | calls/s ÷ proxy | p50 ÷ direct |\n|---|---|---|---|---|---|---|---|\n")
	for _, sessions := range []int{1, 8} {
		px, dx := results["reverse proxy"][sessions], results["direct"][sessions]
		for _, t := range targets[:3] {
			s := results[t.name][sessions]
			fmt.Printf("| %s | %d | %v | %v | %.0f | %.2f | %.2f | %.2f |\n", t.name, sessions, s.p50.Round(time.Microsecond), s.p99.Round(time.Microsecond), s.rate,
				float64(s.p50)/float64(px.p50), s.rate/px.rate, float64(s.p50)/float64(dx.p50))
		}
	}
	fmt.Printf("\n| stdio path | sessions | p50 | p99 | calls/s | p50 ÷ mcp-proxy | calls/s ÷ mcp-proxy | p50 ÷ stdio direct |\n|---|---|---|---|---|---|---|---|\n")
	for _, sessions := range []int{1, 8} {
		base, floor := results["stdio direct"][sessions], results["mcp-proxy → stdio"][sessions]
		for _, name := range []string{"stdio direct", "mcp-proxy → stdio", "gateway → stdio"} {
			s := results[name][sessions]
			fmt.Printf("| %s | %d | %v | %v | %.0f | %.2f | %.2f | %.2f |\n", name, sessions, s.p50.Round(time.Microsecond), s.p99.Round(time.Microsecond), s.rate,
				float64(s.p50)/float64(floor.p50), s.rate/floor.rate, float64(s.p50)/float64(base.p50))
		}
	}
	fmt.Printf("\nProtocol: %s. %d concurrent sessions through the gateway: %d errors, all opened and called once in %v.\n", protocol, *memSessions, manyErrs, manyWall.Round(time.Millisecond))
	fmt.Printf("Gateway memory (RSS): idle %.1f MiB; %d extra idle sessions added %.1f MiB, %.1f KiB per session.\n",
		float64(idleKB)/1024, *memSessions, float64(after-before)/1024, float64(after-before)/float64(*memSessions))
	fmt.Printf("Retained (RSS after a collection returned freed memory): idle %.1f MiB; %d idle sessions added %.1f MiB, %.1f KiB per session.\n",
		float64(idleRetainedKB)/1024, *memSessions, float64(afterRetained-beforeRetained)/1024, float64(afterRetained-beforeRetained)/float64(*memSessions))
	return nil
}

// manySessions opens n sessions of t concurrently, reads the gateway's
// RSS with them open and idle (rss), then has each make one call, all at
// once. It returns the open sessions, the number of failed connects and
// calls, the time the connects and calls took, and the idle RSS.
func manySessions(ctx context.Context, t target, n int, rss func() (int, error)) ([]*mcp.ClientSession, int, time.Duration, int) {
	start := time.Now()
	css := make([]*mcp.ClientSession, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { css[i], errs[i] = t.connect(ctx) })
	}
	wg.Wait()
	opened := time.Since(start)
	time.Sleep(time.Second)
	idle, _ := rss()
	start = time.Now()
	for i, cs := range css {
		if cs == nil {
			continue
		}
		wg.Go(func() {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: t.tool, Arguments: map[string]any{"text": "ping"}})
			if err == nil && res.IsError {
				err = fmt.Errorf("tool error: %v", res.Content)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	var held []*mcp.ClientSession
	failed := 0
	for i, cs := range css {
		if errs[i] != nil {
			failed++
			fmt.Fprintf(os.Stderr, "session %d: %v\n", i, errs[i])
		}
		if cs != nil {
			held = append(held, cs)
		}
	}
	return held, failed, opened + time.Since(start), idle
}
