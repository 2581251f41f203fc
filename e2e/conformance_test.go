package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/internal/npmdeps"
)

// TestConformance runs the server scenarios of the official MCP
// conformance suite (npm @modelcontextprotocol/conformance, every scenario:
// --suite all) against a reference server directly and through the gateway,
// with the upstream exposed un-prefixed (prefix: ""), on the oldest release
// we support (0.1.12, Node 20) and the newest one that runs here (0.1.16, on
// the Node 22 binary of npm's node package). Every scenario that passes
// directly must pass through the gateway.
//
// The reference server is go-sdk's conformance/everything-server, built
// from the go-sdk module this repository already requires: the suite's own
// TypeScript server (examples/servers/typescript in its repository) is not
// published on npm, and nothing but registries is reachable from CI. The
// suite cannot send a bearer token in server mode, so the gateway is served
// on loopback behind a handler that adds a real capability token to /mcp
// requests; everything else (Host and Origin included) reaches the gateway
// as the suite sent it. The token allows every tool and the Cedar policy
// exempts every call from confirmation: the suite checks the protocol, the
// gate has its own tests. e2e/conformance.sh runs just this test.
//
// CHATMCP_CONFORMANCE_UPSTREAM, when set, names the MCP URL of a reference
// server already running (the suite's own TypeScript server, run from a
// checkout of its repository) to use instead, and
// CHATMCP_CONFORMANCE_PROTOCOL the upstream block's protocol_version (that
// server claims 2026-07-28 yet sends elicitation and sampling requests,
// which the SDK's 2026-07-28 client refuses: pin 2025-11-25).
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance suite: not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	versions := []string{"0.1.12", "0.1.16"}
	var wg sync.WaitGroup
	errs := make([]error, len(versions))
	for i, v := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = npmdeps.Install(ctx, filepath.Join("conformance", v))
		}()
	}
	upstream := os.Getenv("CHATMCP_CONFORMANCE_UPSTREAM")
	if upstream == "" {
		upstream = startEverythingServer(t, ctx)
	} else {
		t.Logf("reference server: %s (CHATMCP_CONFORMANCE_UPSTREAM)", upstream)
	}
	gw := startConformanceGateway(t, upstream)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("installing conformance %s: %v", versions[i], err)
		}
	}

	type run struct {
		version, target, url string
		res                  map[string]bool
		out                  string
		err                  error
	}
	var runs []*run
	for _, v := range versions {
		runs = append(runs, &run{version: v, target: "direct", url: upstream}, &run{version: v, target: "gateway", url: gw})
	}
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.res, r.out, r.err = runConformance(ctx, t.TempDir(), r.version, r.url)
		}()
	}
	wg.Wait()
	for i := 0; i < len(runs); i += 2 {
		direct, through := runs[i], runs[i+1]
		for _, r := range []*run{direct, through} {
			if r.err != nil {
				t.Fatalf("conformance %s %s: %v\n%s", r.version, r.target, r.err, r.out)
			}
		}
		var lost []string
		for name, ok := range direct.res {
			if ok && !through.res[name] {
				lost = append(lost, name)
			}
		}
		sort.Strings(lost)
		t.Logf("conformance %s: %d of %d scenarios pass directly, %d of %d through the gateway",
			direct.version, count(direct.res), len(direct.res), count(through.res), len(through.res))
		if len(direct.res) == 0 {
			t.Fatalf("conformance %s ran no scenario:\n%s", direct.version, direct.out)
		}
		if len(lost) > 0 {
			t.Errorf("conformance %s: pass directly but not through the gateway: %s\n%s", direct.version, strings.Join(lost, ", "), through.out)
		}
	}
}

func count(m map[string]bool) int {
	n := 0
	for _, ok := range m {
		if ok {
			n++
		}
	}
	return n
}

// summaryLine is one scenario in the suite's summary: "✓ name: 1 passed, 0 failed".
var summaryLine = regexp.MustCompile(`(?m)^([✓✗])\s+(\S+):\s+(\d+) passed, (\d+) failed`)

// runConformance runs every server scenario of the suite version against
// url, from dir (where the suite writes its results), and returns which
// passed.
func runConformance(ctx context.Context, dir, version, url string) (map[string]bool, string, error) {
	pkg, err := filepath.Abs(filepath.Join("conformance", version, "node_modules"))
	if err != nil {
		return nil, "", err
	}
	node := "node"
	if _, err := os.Stat(filepath.Join(pkg, ".bin", "node")); err == nil {
		node = filepath.Join(pkg, ".bin", "node") // npm's node package (Node 22)
	}
	cmd := exec.CommandContext(ctx, node, filepath.Join(pkg, "@modelcontextprotocol", "conformance", "dist", "index.js"),
		"server", "--suite", "all", "--url", url, "-o", filepath.Join(dir, "results"))
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The suite exits 1 when any scenario fails; the summary says which.
	runErr := cmd.Run()
	res := map[string]bool{}
	for _, m := range summaryLine.FindAllStringSubmatch(out.String(), -1) {
		failed, _ := strconv.Atoi(m[4])
		res[m[2]] = m[1] == "✓" && failed == 0
	}
	if len(res) == 0 && runErr != nil {
		return nil, out.String(), runErr
	}
	return res, out.String() + failedChecks(dir), nil
}

// failedChecks lists the failed checks the suite recorded under dir
// (results/server-<scenario>-<time>/checks.json), for the failure message.
func failedChecks(dir string) string {
	files, _ := filepath.Glob(filepath.Join(dir, "results", "*", "checks.json"))
	var b strings.Builder
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var checks []map[string]any
		if json.Unmarshal(raw, &checks) != nil {
			continue
		}
		for _, c := range checks {
			if c["status"] == "FAILURE" {
				fmt.Fprintf(&b, "%s: %v: %v\n", filepath.Base(filepath.Dir(f)), c["name"], c["errorMessage"])
			}
		}
	}
	return b.String()
}

// startEverythingServer builds go-sdk's conformance server and serves it
// (stateful streamable HTTP) on a loopback port; it returns its URL once
// it accepts connections.
func startEverythingServer(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "everything-server")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building go-sdk's everything-server: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := exec.Command(bin, "-http", addr, "-stateless=false")
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("everything-server did not listen on %s: %v\n%s", addr, err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "http://" + addr + "/mcp"
}

// conformancePolicy lets every call through without confirmation.
const conformancePolicy = `permit (principal, action == Action::"call", resource);
permit (principal, action == Action::"skip_confirmation", resource);
`

// startConformanceGateway serves a gateway in front of upstream, its names
// un-prefixed, on plain HTTP on loopback, adding a capability token for
// every tool to each /mcp request; it returns the gateway's MCP URL.
func startConformanceGateway(t *testing.T, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.cedar")
	if err := os.WriteFile(policy, []byte(conformancePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := gateway.ParseConfig([]byte(fmt.Sprintf(`
listen: 127.0.0.1:0
data: %s
policy: %s
upstreams:
  everything:
    url: %s
    prefix: ""
    call_timeout: 20s
`, filepath.Join(dir, "data"), policy, upstream) + protocolLine()))
	if err != nil {
		t.Fatal(err)
	}
	att, err := sim.NewAttester(nil)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg, &gateway.Options{Attester: att, Dev: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	tok := mintInProcess(t, gw)
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == gateway.PathMCP {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		gw.Handler().ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: front, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return "http://" + l.Addr().String() + gateway.PathMCP
}

// mintInProcess mints a token for every tool through the admin API.
func mintInProcess(t *testing.T, gw *gateway.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(l)
	defer hs.Close()
	req, _ := http.NewRequest("POST", "http://"+l.Addr().String()+"/admin/v1/tokens", strings.NewReader(`{"tools":["*"],"ttl":"1h","subject":"conformance"}`))
	req.Header.Set("Authorization", "Bearer "+gw.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m gateway.MintResponse
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("mint: status %d: %v", resp.StatusCode, err)
	}
	return m.Token
}

// protocolLine is the upstream block's protocol_version line, if
// CHATMCP_CONFORMANCE_PROTOCOL sets one.
func protocolLine() string {
	if v := os.Getenv("CHATMCP_CONFORMANCE_PROTOCOL"); v != "" {
		return "    protocol_version: " + v + "\n"
	}
	return ""
}
