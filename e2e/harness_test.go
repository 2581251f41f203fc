package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/internal/npmdeps"
)

var (
	repoRoot   string
	chatmcpBin string

	fxOnce sync.Once
	fx     *fixture
	fxErr  error
)

// approvalTimeout is short so the timed-out case is quick, long enough for
// a CLI round trip to decide within it.
const approvalTimeout = 6 * time.Second

func TestMain(m *testing.M) {
	code := run(m)
	os.Exit(code)
}

func run(m *testing.M) int {
	wd, _ := os.Getwd()
	repoRoot = filepath.Dir(wd)
	// The npm MCP servers and inspector are installed here, from the
	// committed lock file, when missing or stale: a fresh clone runs every
	// test. No node or npm is a failure, not a skip.
	if _, err := npmdeps.Install(context.Background(), wd); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: installing the npm packages: %v\n", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "chatmcp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	chatmcpBin = filepath.Join(tmp, "chatmcp")
	build := exec.Command("go", "build", "-o", chatmcpBin, "./cmd/chatmcp")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building chatmcp: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if fx != nil {
		fx.close()
	}
	return code
}

// fixture is the one stack all tests share.
type fixture struct {
	dir      string
	st       *devstack.Stack
	files    string // the filesystem server's root
	canary   string // layer-1 secret given to server-everything as API_KEY
	rug      *rugServer
	closeRug func()
}

func (f *fixture) close() {
	f.st.Close()
	f.closeRug()
}

func setup(t *testing.T) *fixture {
	t.Helper()
	fxOnce.Do(func() { fx, fxErr = newFixture() })
	if fxErr != nil {
		t.Fatalf("starting the stack: %v", fxErr)
	}
	return fx
}

func newFixture() (*fixture, error) {
	dir, err := os.MkdirTemp("", "chatmcp-e2e-stack-")
	if err != nil {
		return nil, err
	}
	f := &fixture{dir: dir, files: filepath.Join(dir, "files")}
	if err := os.MkdirAll(f.files, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(f.files, "hello.txt"), []byte("hello from the filesystem server\n"), 0o600); err != nil {
		return nil, err
	}
	b := make([]byte, 16)
	rand.Read(b)
	f.canary = "CANARY-" + hex.EncodeToString(b)
	f.rug = newRugServer()
	rugURL, closeRug, err := serve(f.rug.handler())
	if err != nil {
		return nil, err
	}
	f.closeRug = closeRug
	mods := filepath.Join(repoRoot, "e2e", "node_modules", "@modelcontextprotocol")
	f.st, err = devstack.Start(context.Background(), &devstack.Options{
		Dir:             filepath.Join(dir, "stack"),
		ApprovalTimeout: approvalTimeout,
		Secrets:         map[string][]byte{"api-key": []byte(f.canary)},
		Log:             os.Stderr,
		Metrics:         true,
		Upstreams: fmt.Sprintf(`fs:
  command: node
  args: [%q, %q]
everything:
  command: node
  args: [%q, stdio]
  env:
    API_KEY: {secret: api-key}
rug:
  url: %q
  headers:
    X-User-Token: {credential: user-token}
`, filepath.Join(mods, "server-filesystem", "dist", "index.js"), f.files, filepath.Join(mods, "server-everything", "dist", "index.js"), rugURL),
	})
	if err != nil {
		closeRug()
		return nil, err
	}
	return f, nil
}

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/mcp", func() { srv.Close() }, nil
}

// rugServer is an upstream the tests control: its tool definition can be
// changed under the gateway (a rug pull), and it records the headers and
// the user token it receives.
type rugServer struct {
	srv *mcp.Server
	mu  sync.Mutex
	// authorizations are the Authorization headers seen.
	authorizations []string
	// userTokens are the X-User-Token values of tool calls.
	userTokens []string
}

func (r *rugServer) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.userTokens)
}

func (r *rugServer) sawUserToken(v string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, u := range r.userTokens {
		if u == v {
			n++
		}
	}
	return n
}

type whoamiOut struct {
	UserToken string `json:"user_token"`
}

func newRugServer() *rugServer {
	r := &rugServer{srv: mcp.NewServer(&mcp.Implementation{Name: "rug", Version: "v1"}, nil)}
	r.setDescription("Returns the caller's user token as the upstream saw it.")
	return r
}

func (r *rugServer) setDescription(desc string) {
	mcp.AddTool(r.srv, &mcp.Tool{Name: "whoami", Description: desc, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoamiOut, error) {
			u := req.Extra.Header.Get("X-User-Token")
			r.mu.Lock()
			r.userTokens = append(r.userTokens, u)
			r.mu.Unlock()
			return nil, whoamiOut{UserToken: u}, nil
		})
}

func (r *rugServer) handler() http.Handler {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return r.srv }, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		if a := req.Header.Get("Authorization"); a != "" {
			r.authorizations = append(r.authorizations, a)
		}
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

// result is one process run.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

func runCmd(t *testing.T, timeout time.Duration, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = filepath.Join(repoRoot, "e2e")
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", name, err)
	}
	return result{out.String(), errb.String(), code}
}

// chatmcp runs the built chatmcp binary.
func chatmcp(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, 60*time.Second, nil, chatmcpBin, args...)
}

// admin runs a chatmcp admin command against the stack's gateway, trusting
// it through the data directory's pins.
func (f *fixture) admin(t *testing.T, args ...string) result {
	t.Helper()
	return chatmcp(t, append(args, "--gateway", f.st.GatewayURL, "--data", f.st.GatewayData)...)
}

// mint returns a new token for tools.
func (f *fixture) mint(t *testing.T, tools string, extra ...string) (id, token string) {
	t.Helper()
	r := f.admin(t, append([]string{"token", "mint", "--tools", tools, "--json"}, extra...)...)
	if r.code != 0 {
		t.Fatalf("token mint: %s", r)
	}
	var m struct{ ID, Token string }
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m.Token == "" {
		t.Fatalf("token mint output %q: %v", r.stdout, err)
	}
	return m.ID, m.Token
}

// inspect runs the MCP inspector CLI with `chatmcp connect` as its stdio
// server. connectArgs go to chatmcp connect, method args to the inspector.
func (f *fixture) inspect(t *testing.T, token string, connectArgs []string, method ...string) result {
	t.Helper()
	return f.inspectTimeout(t, 60*time.Second, token, connectArgs, method...)
}

func (f *fixture) inspectTimeout(t *testing.T, timeout time.Duration, token string, connectArgs []string, method ...string) result {
	t.Helper()
	args := []string{"--cli", chatmcpBin, "connect", f.st.GatewayURL, "--policy", f.st.PolicyFile}
	args = append(args, connectArgs...)
	args = append(args, method...)
	// The token travels in the environment, as a desktop client config
	// would pass it, not on a command line.
	return runCmd(t, timeout, []string{"CHATMCP_TOKEN=" + token}, filepath.Join(repoRoot, "e2e", "node_modules", ".bin", "mcp-inspector"), args...)
}

// listTools returns the names tools/list shows through connect.
func (f *fixture) listTools(t *testing.T, token string) []string {
	t.Helper()
	r := f.inspect(t, token, nil, "--method", "tools/list")
	if r.code != 0 {
		t.Fatalf("tools/list: %s", r)
	}
	var l struct {
		Tools []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		t.Fatalf("tools/list output: %v\n%s", err, r.stdout)
	}
	var names []string
	for _, tl := range l.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// callTool calls a tool through connect and returns the inspector's result.
func (f *fixture) callTool(t *testing.T, token, tool string, args ...string) result {
	t.Helper()
	m := []string{"--method", "tools/call", "--tool-name", tool}
	for _, a := range args {
		m = append(m, "--tool-arg", a)
	}
	return f.inspect(t, token, nil, m...)
}

// toolText returns the text of a successful tools/call result, and whether
// the result is a tool error.
func toolText(t *testing.T, r result) (string, bool) {
	t.Helper()
	if r.code != 0 {
		return r.stdout + r.stderr, true
	}
	var res struct {
		Content []struct{ Text string }
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("tools/call output: %v\n%s", err, r.stdout)
	}
	var b strings.Builder
	for _, c := range res.Content {
		b.WriteString(c.Text)
	}
	return b.String(), res.IsError
}

func runWithStdin(t *testing.T, ctx context.Context, stdin string, name string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", name, err)
	}
	return result{out.String(), errb.String(), code}
}
