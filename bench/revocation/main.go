// Command revocation-bench measures how long a token revoked through one
// gateway replica stays accepted by another replica sharing its PostgreSQL
// database: with LISTEN/NOTIFY (the default), and with LISTEN off so that
// only the periodic reconcile carries the revocation (docs/BENCHMARKS.md,
// "Gateway: revocation across replicas").
//
//	CHATMCP_TEST_POSTGRES_DSN=postgres://… go run ./bench/revocation [-rounds 30]
//
// It creates a scratch database on that server (dropped at the end), starts
// three replicas with gateway/daemon.Main in this process (A; B with the default
// revocations settings; C with listen: false), and per round mints a token
// on A, checks that B and C accept it, revokes it through A's admin API
// and polls B and C until each answers 401. The time is from sending the
// revoke request to the first refusal.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/gateway/daemon"
	"github.com/chatmcp/chatmcp/store"
)

func main() {
	rounds := flag.Int("rounds", 30, "revocations to measure")
	reconcile := flag.Duration("reconcile", 2*time.Second, "revocations.reconcile of the replicas")
	flag.Parse()
	if err := run(*rounds, *reconcile); err != nil {
		fmt.Fprintln(os.Stderr, "revocation-bench:", err)
		os.Exit(1)
	}
}

func run(rounds int, reconcile time.Duration) error {
	admin := os.Getenv("CHATMCP_TEST_POSTGRES_DSN")
	if admin == "" {
		return errors.New("CHATMCP_TEST_POSTGRES_DSN is unset: no PostgreSQL server to measure against")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dsn, drop, err := scratchDB(ctx, admin)
	if err != nil {
		return err
	}
	defer drop()
	pgVersion, err := serverVersion(ctx, dsn)
	if err != nil {
		return err
	}

	up := mcp.NewServer(&mcp.Implementation{Name: "bench-upstream", Version: "v1"}, nil)
	up.AddTool(&mcp.Tool{Name: "echo", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{}, nil
		})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go (&http.Server{Handler: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil), ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	upURL := "http://" + ln.Addr().String() + "/mcp"

	tmp, err := os.MkdirTemp("", "revocation-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	start := func(name, extra string) (string, error) {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
			return "", err
		}
		if name != "a" {
			for _, f := range []string{"token.key", "admin.token"} {
				b, err := os.ReadFile(filepath.Join(tmp, "a", "data", f))
				if err != nil {
					return "", err
				}
				if err := os.WriteFile(filepath.Join(dir, "data", f), b, 0o600); err != nil {
					return "", err
				}
			}
		}
		cfg := fmt.Sprintf("listen: 127.0.0.1:0\ndata: ./data\ndatabase: %s\nrevocations:\n  reconcile: %s\n%supstreams:\n  up:\n    url: %s\n",
			dsn, reconcile, extra, upURL)
		path := filepath.Join(dir, "gw.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return "", err
		}
		ready := make(chan string, 1)
		done := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := daemon.Main(ctx, []string{"--config", path, "--dev"}, io.Discard, daemon.Deps{
				Ready: func(a net.Addr) { ready <- a.String() },
			}); code != 0 {
				done <- fmt.Errorf("chatmcp-gateway exited with code %d", code)
			} else {
				done <- nil
			}
		}()
		select {
		case addr := <-ready:
			return "https://" + addr, nil
		case err := <-done:
			return "", fmt.Errorf("replica %s: %v", name, err)
		}
	}
	a, err := start("a", "")
	if err != nil {
		return err
	}
	b, err := start("b", "")
	if err != nil {
		return err
	}
	c, err := start("c", "  listen: false\n")
	if err != nil {
		return err
	}
	tok, err := os.ReadFile(filepath.Join(tmp, "a", "data", "admin.token"))
	if err != nil {
		return err
	}
	adminToken := strings.TrimSpace(string(tok))

	// The replicas run --dev on simulated evidence; the RA-TLS
	// certificate is not what is measured here.
	client := func() *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	ca, cb, cc := client(), client(), client()
	var notify, only []time.Duration
	for i := 0; i < rounds; i++ {
		id, token, err := mint(ca, a, adminToken)
		if err != nil {
			return err
		}
		for _, r := range []struct {
			hc  *http.Client
			url string
		}{{cb, b}, {cc, c}} {
			if st, err := status(r.hc, r.url, token); err != nil || st == http.StatusUnauthorized {
				return fmt.Errorf("round %d: %s refuses a fresh token (%d, %v)", i, r.url, st, err)
			}
		}
		// Revoke at a random phase of the replicas' reconcile ticks: right
		// after the previous refusal, every round would start just after a
		// tick and the reconcile-only figure would always be a full period.
		jitter := make([]byte, 8)
		rand.Read(jitter)
		time.Sleep(time.Duration(binary.LittleEndian.Uint64(jitter) % uint64(reconcile)))
		t0 := time.Now()
		var dB, dC time.Duration
		var eB, eC error
		var pw sync.WaitGroup
		pw.Add(2)
		go func() { defer pw.Done(); dB, eB = untilRefused(cb, b, token, t0) }()
		go func() { defer pw.Done(); dC, eC = untilRefused(cc, c, token, t0) }()
		if err := revoke(ca, a, adminToken, id); err != nil {
			return err
		}
		pw.Wait()
		if err := errors.Join(eB, eC); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		notify, only = append(notify, dB), append(only, dC)
	}
	cpu := cpuModel()
	fmt.Printf("machine: %s, %d logical CPUs, %s/%s, %s; %s\n", cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), pgVersion)
	fmt.Printf("reconcile %s, %d revocations, from sending `revoke` to replica A until replica B answers 401:\n", reconcile, rounds)
	fmt.Printf("  LISTEN/NOTIFY + reconcile: %s\n", summary(notify))
	fmt.Printf("  reconcile only (listen: false): %s\n", summary(only))
	return nil
}

func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	r := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	return fmt.Sprintf("min %s, median %s, p90 %s, max %s", r(s[0]), r(q(0.5)), r(q(0.9)), r(s[len(s)-1]))
}

func mint(hc *http.Client, base, admin string) (id, token string, err error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/admin/v1/tokens", strings.NewReader(`{"tools":["up_*"],"ttl":"1h","subject":"bench"}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var m gateway.MintResponse
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("mint: %d %v", resp.StatusCode, err)
	}
	return m.ID, m.Token, nil
}

func revoke(hc *http.Client, base, admin, id string) error {
	req, _ := http.NewRequest(http.MethodPost, base+"/admin/v1/tokens/"+id+"/revoke", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("revoke: %d", resp.StatusCode)
	}
	return nil
}

// status is what a replica answers a token-protected request with (401
// when it refuses the token).
func status(hc *http.Client, base, token string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, base+gateway.PathCredentials, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func untilRefused(hc *http.Client, base, token string, t0 time.Time) (time.Duration, error) {
	for {
		st, err := status(hc, base, token)
		if err != nil {
			return 0, err
		}
		if st == http.StatusUnauthorized {
			return time.Since(t0), nil
		}
		if time.Since(t0) > time.Minute {
			return 0, fmt.Errorf("%s still accepts a token revoked a minute ago", base)
		}
	}
}

func scratchDB(ctx context.Context, admin string) (dsn string, drop func(), err error) {
	adb, err := store.Open(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := "chatmcp_bench_" + hex.EncodeToString(rnd[:])
	if _, err := adb.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		adb.Close()
		return "", nil, err
	}
	u, err := url.Parse(admin)
	if err != nil {
		adb.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		adb.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		adb.Close()
	}, nil
}

func serverVersion(ctx context.Context, dsn string) (string, error) {
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(ctx, `SHOW server_version`).Scan(&v); err != nil {
		return "", err
	}
	return "PostgreSQL " + v + " on loopback", nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
