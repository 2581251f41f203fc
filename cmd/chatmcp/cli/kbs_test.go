package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/attest/devices"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/kbs"
	"github.com/chatmcp/chatmcp/kbsapi"
	"github.com/chatmcp/chatmcp/store/storetest"
)

func startKBS(t *testing.T, token string) string {
	t.Helper()
	ctx := context.Background()
	st, err := kbs.OpenStorage(ctx, storetest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	sl, _ := kbs.NewFileSealer(key)
	seed := make([]byte, 32)
	rand.Read(seed)
	alog, err := audit.Open(ctx, filepath.Join(t.TempDir(), "audit.jsonl"), &audit.Options{Signer: ed25519.NewKeyFromSeed(seed)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	srv, err := kbs.NewServer(&kbs.Options{Storage: st, Sealer: sl, Checker: verifiers.New(nil), Audit: alog, AdminToken: token, Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

func TestKBSCLI(t *testing.T) {
	token := "cli-test-token-0123456789abcdef0123456789"
	url := startKBS(t, token)
	dir := t.TempDir()
	meas := strings.Repeat("ab", 48)
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte("allow: [sim]\nsim:\n  measurement: ["+meas+"]\n"), 0o600)
	tokenFile := filepath.Join(dir, "admin.token")
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	vars := map[string]string{EnvKBSToken: token, "CHATMCP_SIM_MEASUREMENT": meas}
	env := func() *Env { return &Env{Getenv: func(k string) string { return vars[k] }} }

	if code, out, errs := runCLI(t, env(), "kbs", "secret", "put", "gh", "--value", "tok-1", "--policy", policy, "--kbs", url); code != 0 || !strings.Contains(out, "gh version 1") {
		t.Fatalf("put: %d %q %q", code, out, errs)
	}
	valueFile := filepath.Join(dir, "v")
	os.WriteFile(valueFile, []byte("tok-2"), 0o600)
	if code, out, errs := runCLI(t, &Env{}, "kbs", "secret", "put", "gh", "--from-file", valueFile, "--policy", policy, "--kbs", url, "--token-file", tokenFile); code != 0 || !strings.Contains(out, "gh version 2") {
		t.Fatalf("rotate with --token-file: %d %q %q", code, out, errs)
	}
	code, out, errs := runCLI(t, env(), "kbs", "secret", "list", "--json", "--kbs", url)
	var list kbsapi.SecretList
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Secrets) != 1 || list.Secrets[0].Version != 2 {
		t.Fatalf("list --json: %d %q %q", code, out, errs)
	}
	if strings.Contains(out, "tok-") {
		t.Fatal("list printed a value")
	}
	if code, out, _ := runCLI(t, env(), "kbs", "secret", "list", "--kbs", url); code != 0 || !strings.Contains(out, "gh") {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, out, errs := runCLI(t, env(), "kbs", "fetch", "--kbs", url, "--tee", "sim", "gh"); code != 0 || out != "tok-2" {
		t.Fatalf("fetch: %d %q %q", code, out, errs)
	}
	other := filepath.Join(dir, "other.yaml")
	os.WriteFile(other, []byte("allow: [sim]\nsim:\n  measurement: ["+strings.Repeat("cd", 48)+"]\n"), 0o600)
	if code, _, errs := runCLI(t, env(), "kbs", "secret", "policy", "gh", "--policy", other, "--kbs", url); code != 0 {
		t.Fatalf("policy: %d %q", code, errs)
	}
	code, out, errs = runCLI(t, env(), "kbs", "fetch", "--kbs", url, "--tee", "sim", "gh")
	if code != ExitRejected || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "(measurement)") {
		t.Fatalf("fetch under another policy: %d %q %q", code, out, errs)
	}
	runCLI(t, env(), "kbs", "secret", "policy", "gh", "--policy", policy, "--kbs", url)
	if code, _, errs := runCLI(t, env(), "kbs", "secret", "revoke", "gh", "--kbs", url); code != 0 {
		t.Fatalf("revoke: %d %q", code, errs)
	}
	code, _, errs = runCLI(t, env(), "kbs", "fetch", "--kbs", url, "--tee", "sim", "gh")
	if code != ExitRejected || !strings.Contains(errs, "(revoked)") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("fetch revoked: %d %q", code, errs)
	}
	bad := map[string]string{EnvKBSToken: "wrong"}
	if code, _, errs := runCLI(t, &Env{Getenv: func(k string) string { return bad[k] }}, "kbs", "secret", "list", "--kbs", url); code != ExitInvalid || !strings.Contains(errs, "unauthorized") {
		t.Fatalf("wrong token: %d %q", code, errs)
	}
	for _, args := range [][]string{
		{"kbs", "secret", "list"},
		{"kbs", "secret", "put", "x", "--policy", policy, "--kbs", url},
		{"kbs", "secret", "put", "x", "--value", "v", "--kbs", url},
		{"kbs", "fetch", "--kbs", url, "--tee", "sgx", "gh"},
		{"kbs", "fetch", "--kbs", url, "gh"},
	} {
		if code, _, _ := runCLI(t, env(), args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
	// A real TEE type uses this machine's device; there is none here, so
	// the handshake fails at the evidence step, saying so, and releases
	// nothing.
	if _, err := devices.Detect(nil); err != nil {
		code, out, errs := runCLI(t, env(), "kbs", "fetch", "--kbs", url, "--tee", "sevsnp", "gh")
		if code == 0 || out != "" || !strings.Contains(errs, "sev") {
			t.Errorf("fetch --tee sevsnp without the device: exit %d, stdout %q, stderr %q", code, out, errs)
		}
	}
	if code, _, _ := runCLI(t, &Env{Getenv: func(string) string { return "" }}, "kbs", "secret", "list", "--kbs", url); code != ExitUsage {
		t.Errorf("no token: exit %d", code)
	}
}
