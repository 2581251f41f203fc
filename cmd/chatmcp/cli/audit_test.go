package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/audit"
)

func runCLI(t *testing.T, env *Env, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if env == nil {
		env = &Env{}
	}
	env.Stdout, env.Stderr = &out, &errb
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	code := Main(context.Background(), args, env)
	return code, out.String(), errb.String()
}

func TestAuditVerifyCLI(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(context.Background(), path, &audit.Options{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		l.Append(context.Background(), audit.Entry{Type: "kbs.release", Secret: "db", Decision: "granted"})
	}
	l.Close()
	pub := hex.EncodeToString(key.Public().(ed25519.PublicKey))
	if code, out, errs := runCLI(t, nil, "audit", "verify", path, "--key", pub); code != 0 || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("intact log: code %d, %q %q", code, out, errs)
	}
	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	tampered := filepath.Join(t.TempDir(), "t.jsonl")
	os.WriteFile(tampered, []byte(lines[0]+lines[1]+lines[3]+strings.Join(lines[4:], "")), 0o600)
	code, _, errs := runCLI(t, nil, "audit", "verify", tampered)
	if code != ExitInvalid || !strings.Contains(errs, "line 3:") {
		t.Fatalf("removed line: code %d, stderr %q", code, errs)
	}
	other := hex.EncodeToString(make([]byte, 32))
	if code, _, errs := runCLI(t, nil, "audit", "verify", path, "--key", other); code != ExitInvalid || !strings.Contains(errs, "line 1:") {
		t.Fatalf("wrong key: code %d, stderr %q", code, errs)
	}
	if code, _, _ := runCLI(t, nil, "audit", "verify", path, "--key", "zz"); code != ExitUsage {
		t.Fatalf("bad --key: code %d", code)
	}
	if code, _, _ := runCLI(t, nil, "audit", "verify", filepath.Join(t.TempDir(), "missing")); code != ExitUsage {
		t.Fatalf("missing file: code %d", code)
	}
}
