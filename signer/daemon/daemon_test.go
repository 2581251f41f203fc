package daemon_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/cmd/chatmcp/cli"
	"github.com/chatmcp/chatmcp/internal/ops"
	kbsdaemon "github.com/chatmcp/chatmcp/kbs/daemon"
	"github.com/chatmcp/chatmcp/kbsclient"
	"github.com/chatmcp/chatmcp/signer"
	"github.com/chatmcp/chatmcp/signer/daemon"
	"github.com/chatmcp/chatmcp/signer/signertest"
	"github.com/chatmcp/chatmcp/signerapi"
)

// stack is a real KBS (--dev) holding the signer's key, and a real
// chatmcp-signer (--dev, simulated TEE) that fetched it, on loopback.
type stack struct {
	url, data, policy, badPolicy, kbs string
	payer                             solana.PublicKey
	mint, recipient                   solana.PublicKey
	holds                             chan signerapi.Approval
	reg                               *ops.Registry
}

// startKBS runs a real KBS (--dev) and returns its URL and admin token.
func startKBS(t *testing.T) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	data := t.TempDir()
	go func() {
		done <- kbsdaemon.Run(ctx, &kbsdaemon.Options{Listen: "127.0.0.1:0", Data: data, Dev: true, Stderr: io.Discard, Ready: func(a net.Addr) { ready <- a }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case a := <-ready:
		tok, err := os.ReadFile(filepath.Join(data, kbsdaemon.FileAdminToken))
		if err != nil {
			t.Fatal(err)
		}
		return "http://" + a.String(), strings.TrimSpace(string(tok))
	case err := <-done:
		t.Fatalf("kbs: %v", err)
	}
	return "", ""
}

func startStack(t *testing.T, extraPolicy string) *stack {
	t.Helper()
	ctx := context.Background()
	kbsURL, kbsToken := startKBS(t)
	kp, payer := signertest.NewKeypair(t)
	st := &stack{payer: payer, mint: signertest.NewAddress(t), recipient: signertest.NewAddress(t), holds: make(chan signerapi.Approval, 4), reg: ops.NewRegistry()}
	dir := t.TempDir()
	st.data = filepath.Join(dir, "signer-data")
	st.policy = filepath.Join(dir, "policy.yaml")
	st.badPolicy = filepath.Join(dir, "bad-policy.yaml")
	// The simulator measures the running executable: this test binary is
	// "the signer image", and both the KBS policy and the client's policy
	// pin it.
	pinned := "allow: [sim]\nsim: {measurement: [" + selfMeasurement(t) + "]}\n"
	os.WriteFile(st.policy, []byte(pinned), 0o600)
	os.WriteFile(st.badPolicy, []byte("allow: [sevsnp]\n"), 0o600)
	// The key is released only to simulated evidence here; a production
	// policy names the signer image's measurement (docs/payments.md).
	ac := &kbsclient.AdminClient{BaseURL: kbsURL, Token: kbsToken}
	if _, err := ac.Put(ctx, "payer-wallet", kp.MarshalKeypair(), pinned); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Put(ctx, "other-image-wallet", kp.MarshalKeypair(), "allow: [sim]\nsim: {measurement: ["+strings.Repeat("00", 48)+"]}\n"); err != nil {
		t.Fatal(err)
	}
	st.kbs = kbsURL
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
data: ./signer-data
kbs: %s
key: {secret: payer-wallet}
approval_timeout: 10s
policy:
  programs: [TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA, ComputeBudget111111111111111111111111111111, MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr]
  mints: [%s]
  recipients: [%s]
  max_per_tx: 1000000
  window: {period: 24h, max: 3000000}
  approve_above: 800000
%s`, kbsURL, st.mint, st.recipient, extraPolicy)
	cfgPath := filepath.Join(dir, "signer.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	c, err := signer.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- daemon.Run(rctx, &daemon.Options{Config: c, Dev: true, Stderr: &stderr, Metrics: ops.NewSigner(st.reg, signer.Reasons()),
			OnHold: func(a signerapi.Approval) { st.holds <- a },
			Deps: daemon.Deps{
				Ready: func(a net.Addr) { ready <- a },
				NewSecretSource: func(url string, a attest.Attester) (daemon.SecretSource, error) {
					return &kbsclient.Client{BaseURL: url, Attester: a}, nil
				},
			}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("signer Run: %v", err)
		}
		verifyAudit(t, st.data)
	})
	select {
	case a := <-ready:
		st.url = "https://" + a.String()
	case err := <-done:
		t.Fatalf("signer: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "SIMULATED TEE") {
		t.Error("--dev does not say it runs on the simulated TEE")
	}
	return st
}

func verifyAudit(t *testing.T, data string) {
	t.Helper()
	pub, err := os.ReadFile(filepath.Join(data, daemon.FileAuditPub))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := hex.DecodeString(strings.TrimSpace(string(pub)))
	f, err := os.Open(filepath.Join(data, daemon.FileAuditLog))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := audit.Verify(f, &audit.VerifyOptions{Key: ed25519.PublicKey(key)}); err != nil {
		t.Errorf("signer audit log: %v", err)
	}
}

func selfMeasurement(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum384(b)
	return hex.EncodeToString(sum[:])
}

// run runs the chatmcp CLI in-process.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(context.Background(), args, &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

// TestSignerEndToEnd drives a real signer over RA-TLS (simulated TEE)
// with the chatmcp CLI: pubkey, token mint with a budget, signatures
// granted, refused by each kind of rule with exit 3 and one line naming
// it, malformed input with exit 2, an approval, and a signer whose
// evidence the client's policy rejects.
func TestSignerEndToEnd(t *testing.T) {
	st := startStack(t, "")
	code, out, errs := run(t, "signer", "pubkey", "--signer", st.url, "--policy", st.policy)
	if code != 0 || strings.TrimSpace(out) != st.payer.String() {
		t.Fatalf("pubkey: %d %q %q", code, out, errs)
	}
	if !strings.Contains(errs, "SIMULATED") {
		t.Errorf("pubkey of a --dev signer does not say it is simulated: %q", errs)
	}
	code, _, errs = run(t, "signer", "pubkey", "--signer", st.url, "--policy", st.badPolicy)
	if code != cli.ExitRejected || !strings.Contains(errs, "attestation") {
		t.Fatalf("pubkey under a policy rejecting sim: %d %q", code, errs)
	}
	code, out, errs = run(t, "signer", "token", "mint", "--signer", st.url, "--data", st.data, "--budget", "1500000/24h", "--ttl", "1h")
	if code != 0 || !strings.HasPrefix(out, "cmt1.") {
		t.Fatalf("token mint: %d %q %q", code, out, errs)
	}
	token := strings.TrimSpace(out)
	pay := func(amount uint64) string {
		var bh solana.Hash
		copy(bh[:], signertest.NewAddress(t).Bytes())
		return base64.StdEncoding.EncodeToString(signertest.WireWith(t, st.payer, bh, signertest.TransferChecked(t, amount, st.payer, st.mint, st.recipient)))
	}
	sign := func(tx string) (int, string, string) {
		return run(t, "signer", "sign", "--signer", st.url, "--policy", st.policy, "--token", token, tx)
	}

	code, out, errs = sign(pay(700000))
	if code != 0 {
		t.Fatalf("sign: %d %q", code, errs)
	}
	wire, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := signertest.Decode(t, wire).VerifySignatures(); err != nil {
		t.Fatalf("signed transaction: %v", err)
	}
	txFile := filepath.Join(t.TempDir(), "tx.b64")
	os.WriteFile(txFile, []byte(pay(100)), 0o600)
	if code, _, errs = sign("@" + txFile); code != 0 {
		t.Fatalf("sign @FILE: %d %q", code, errs)
	}

	// An inviter narrows the token offline to a smaller budget: the child
	// is held to it (and to its parent's).
	code, out, errs = run(t, "token", "attenuate", token, "--budget", "1000/1h")
	if code != 0 {
		t.Fatalf("token attenuate --budget: %d %q", code, errs)
	}
	child := strings.TrimSpace(out)
	code, _, errs = run(t, "signer", "sign", "--signer", st.url, "--policy", st.policy, "--token", child, pay(1001))
	if code != cli.ExitRejected || !strings.Contains(errs, "rule "+signerapi.RuleTokenBudget) {
		t.Fatalf("child over its own budget: %d %q", code, errs)
	}
	if code, _, errs = run(t, "signer", "sign", "--signer", st.url, "--policy", st.policy, "--token", child, pay(1000)); code != 0 {
		t.Fatalf("child within its budget: %d %q", code, errs)
	}

	refusals := []struct {
		name, tx, rule string
	}{
		{"max_per_tx", pay(1000001), signerapi.RuleMaxPerTx},
		{"recipient", base64.StdEncoding.EncodeToString(signertest.Wire(t, st.payer, signertest.TransferChecked(t, 5, st.payer, st.mint, signertest.NewAddress(t)))), signerapi.RuleRecipient},
		{"mint", base64.StdEncoding.EncodeToString(signertest.Wire(t, st.payer, signertest.TransferChecked(t, 5, st.payer, signertest.NewAddress(t), st.recipient))), signerapi.RuleMint},
		{"token_budget", pay(798999), signerapi.RuleTokenBudget},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			code, out, errs := sign(r.tx)
			lines := strings.Split(strings.TrimSpace(errs), "\n")
			if code != cli.ExitRejected || out != "" || len(lines) != 1 || !strings.Contains(lines[0], "rule "+r.rule) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 3 and one line naming rule %s", code, out, errs, r.rule)
			}
		})
	}
	t.Run("metrics", func(t *testing.T) {
		mfs, err := st.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetValue())
					if strings.Contains(l.GetValue(), st.payer.String()) || strings.Contains(l.GetValue(), "cmt1.") {
						t.Errorf("metric %s carries a key or token: %q", mf.GetName(), l.GetValue())
					}
				}
				if mf.GetName() == "chatmcp_signer_decisions_total" {
					counts[strings.Join(labels, "/")] = m.GetCounter().GetValue()
				}
			}
		}
		if counts["granted/"] < 1 || counts["denied/max_per_tx"] != 1 || counts["denied/token_budget"] < 1 {
			t.Fatalf("decision counts %v", counts)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for _, tx := range []string{"not base64!", base64.StdEncoding.EncodeToString([]byte("not a transaction"))} {
			if code, _, errs := sign(tx); code != cli.ExitInvalid {
				t.Fatalf("exit %d %q, want 2", code, errs)
			}
		}
	})
	t.Run("usage", func(t *testing.T) {
		if code, _, _ := run(t, "signer", "sign", "--signer", st.url, "--policy", st.policy, "--token", token); code != cli.ExitUsage {
			t.Fatalf("no TX: exit %d", code)
		}
		if code, _, _ := run(t, "signer", "sign", "--signer", st.url, "--policy", st.policy, "--token", token, "@/nonexistent"); code != cli.ExitUsage {
			t.Fatalf("unreadable TX: exit %d", code)
		}
	})
	t.Run("foreign token", func(t *testing.T) {
		code, _, errs := run(t, "signer", "sign", "--signer", st.url, "--policy", st.policy, "--token", token[:len(token)-2]+"AA", pay(5))
		if code != cli.ExitRejected || !strings.Contains(errs, "token") {
			t.Fatalf("exit %d %q", code, errs)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		code, out, _ := run(t, "signer", "token", "mint", "--signer", st.url, "--data", st.data, "--json")
		if code != 0 {
			t.Fatal("mint")
		}
		var m struct{ ID, Token string }
		json.Unmarshal([]byte(out), &m)
		if code, _, errs := run(t, "signer", "token", "revoke", "--signer", st.url, "--data", st.data, m.ID); code != 0 {
			t.Fatalf("revoke: %d %q", code, errs)
		}
		code, _, errs := run(t, "signer", "sign", "--signer", st.url, "--policy", st.policy, "--token", m.Token, pay(5))
		if code != cli.ExitRejected || !strings.Contains(errs, "revoked") {
			t.Fatalf("revoked token: exit %d %q", code, errs)
		}
	})
	t.Run("approval", func(t *testing.T) {
		code, out, _ := run(t, "signer", "token", "mint", "--signer", st.url, "--data", st.data)
		if code != 0 {
			t.Fatal("mint")
		}
		tok := strings.TrimSpace(out)
		done := make(chan int, 1)
		go func() {
			code, _, _ := run(t, "signer", "sign", "--signer", st.url, "--policy", st.policy, "--token", tok, pay(900000))
			done <- code
		}()
		var a signerapi.Approval
		select {
		case a = <-st.holds:
		case <-time.After(10 * time.Second):
			t.Fatal("the request was not held")
		}
		code, out, _ = run(t, "signer", "approvals", "list", "--signer", st.url, "--data", st.data)
		if code != 0 || !strings.Contains(out, a.ID) {
			t.Fatalf("approvals list: %d %q", code, out)
		}
		if code, _, errs := run(t, "signer", "approvals", "approve", "--signer", st.url, "--data", st.data, a.ID); code != 0 {
			t.Fatalf("approve: %d %q", code, errs)
		}
		if code := <-done; code != 0 {
			t.Fatalf("approved sign exited %d", code)
		}
	})
}

// TestKeyReleasedOnlyToThisImage: the KBS releases the signer's key only
// to evidence of the measurement its policy names; a signer whose image
// is another one does not start, and says which check refused.
func TestKeyReleasedOnlyToThisImage(t *testing.T) {
	ctx := context.Background()
	kbsURL, kbsToken := startKBS(t)
	kp, _ := signertest.NewKeypair(t)
	ac := &kbsclient.AdminClient{BaseURL: kbsURL, Token: kbsToken}
	if _, err := ac.Put(ctx, "w", kp.MarshalKeypair(), "allow: [sim]\nsim: {measurement: ["+strings.Repeat("00", 48)+"]}\n"); err != nil {
		t.Fatal(err)
	}
	c, err := signer.ParseConfig([]byte("listen: 127.0.0.1:0\nkbs: " + kbsURL + "\nkey: {secret: w}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.Data = t.TempDir()
	err = daemon.Run(ctx, &daemon.Options{Config: c, Dev: true, Stderr: io.Discard, Deps: daemon.Deps{
		NewSecretSource: func(url string, a attest.Attester) (daemon.SecretSource, error) {
			return &kbsclient.Client{BaseURL: url, Attester: a}, nil
		}}})
	if err == nil || !strings.Contains(err.Error(), "fetching key") || !strings.Contains(err.Error(), "measurement") {
		t.Fatalf("Run = %v, want the KBS's measurement refusal", err)
	}
}

// TestMainUsage: the command line refuses what it cannot run, exit 1,
// naming the problem.
func TestMainUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:0\nkbs: http://127.0.0.1:1\nkey: {secret: w}\npolicy: {max_per_txn: 5}\n"), 0o600)
	nokbs := filepath.Join(dir, "nokbs.yaml")
	os.WriteFile(nokbs, []byte("key: {secret: w}\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, "reading config"},
		{[]string{"--config", bad}, "max_per_txn"},
		{[]string{"--config", nokbs}, "kbs: required"},
		{[]string{"--config", bad, "extra"}, "usage"},
	} {
		var stderr bytes.Buffer
		if code := daemon.Main(context.Background(), tc.args, &stderr, daemon.Deps{}); code != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("Main(%q) = %d, %q; want 1 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
