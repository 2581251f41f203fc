package signer_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gagliardetto/solana-go"

	"github.com/chatmcp/chatmcp/signer"
	"github.com/chatmcp/chatmcp/signer/signertest"
	"github.com/chatmcp/chatmcp/signerapi"
)

// world is a payer (the signer's key), a mint, an allowed recipient and
// a stranger.
type world struct {
	payer, recipient, stranger, mint, otherMint solana.PublicKey
}

func newWorld(t testing.TB) *world {
	_, payer := signertest.NewKeypair(t)
	return &world{payer: payer, recipient: signertest.NewAddress(t), stranger: signertest.NewAddress(t),
		mint: signertest.NewAddress(t), otherMint: signertest.NewAddress(t)}
}

func (w *world) policyYAML(extra string) string {
	return fmt.Sprintf(`programs: [TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA, ComputeBudget111111111111111111111111111111, MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr]
mints: [%s]
recipients: [%s]
max_per_tx: 1000000
window: {period: 24h, max: 3000000}
approve_above: 2000000
%s`, w.mint, w.recipient, extra)
}

func (w *world) policy(t testing.TB, extra string) *signer.Policy {
	t.Helper()
	p, err := signer.ParsePolicy([]byte(w.policyYAML(extra)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func evaluate(t *testing.T, p *signer.Policy, key solana.PublicKey, wire []byte) (*signer.Verdict, error) {
	t.Helper()
	tx, err := signer.Parse(wire)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p.Evaluate(tx, key)
}

// TestPolicyRules reaches every rule Evaluate checks with a real
// transaction, and an allowed transfer of each shape.
func TestPolicyRules(t *testing.T) {
	w := newWorld(t)
	p := w.policy(t, "")
	st := signertest.TransferChecked
	other := signertest.NewAddress(t)
	tests := []struct {
		name   string
		policy string
		key    solana.PublicKey
		wire   []byte
		rule   string // "" means allowed
		amount uint64
	}{
		{name: "allowed transfer_checked", wire: signertest.Wire(t, w.payer, signertest.ComputeUnitLimit(50000), signertest.ComputeUnitPrice(1000), st(t, 500000, w.payer, w.mint, w.recipient), signertest.Memo("order 1", w.payer)), amount: 500000},
		{name: "allowed unchecked transfer from the mint's ATA", wire: signertest.Wire(t, w.payer, signertest.Transfer(t, 700000, w.payer, w.mint, w.recipient)), amount: 700000},
		{name: "allowed: another signer's transfer costs nothing", key: w.payer, wire: signertest.Wire(t, w.payer, st(t, 900000, other, w.mint, w.recipient)), amount: 0},
		{name: "program", wire: signertest.Wire(t, w.payer, signertest.SOLTransfer(1, w.payer, w.recipient)), rule: signerapi.RuleProgram},
		{name: "instruction", wire: signertest.Wire(t, w.payer, signertest.Approve(t, 5, w.payer, w.mint, w.stranger)), rule: signerapi.RuleInstruction},
		{name: "mint", wire: signertest.Wire(t, w.payer, st(t, 5, w.payer, w.otherMint, w.recipient)), rule: signerapi.RuleMint},
		{name: "mint unknown in an unchecked transfer", wire: signertest.Wire(t, w.payer, signertest.Transfer(t, 5, w.payer, w.otherMint, w.recipient)), rule: signerapi.RuleMint},
		{name: "recipient", wire: signertest.Wire(t, w.payer, st(t, 5, w.payer, w.mint, w.stranger)), rule: signerapi.RuleRecipient},
		{name: "max_per_tx", wire: signertest.Wire(t, w.payer, st(t, 1000001, w.payer, w.mint, w.recipient)), rule: signerapi.RuleMaxPerTx},
		{name: "max_per_tx summed over transfers", wire: signertest.Wire(t, w.payer, st(t, 600000, w.payer, w.mint, w.recipient), signertest.Transfer(t, 600000, w.payer, w.mint, w.recipient)), rule: signerapi.RuleMaxPerTx},
		{name: "sol_transfer", policy: "programs: [11111111111111111111111111111111]\n", wire: signertest.Wire(t, w.payer, signertest.SOLTransfer(1, w.payer, w.recipient)), rule: signerapi.RuleSOLTransfer},
		{name: "compute_unit_price", wire: signertest.Wire(t, w.payer, signertest.ComputeUnitPrice(5_000_001), st(t, 5, w.payer, w.mint, w.recipient)), rule: signerapi.RuleComputeUnitPrice},
		{name: "compute_unit_limit", policy: w.policyYAML("max_compute_unit_limit: 100000\n"), wire: signertest.Wire(t, w.payer, signertest.ComputeUnitLimit(100001), st(t, 5, w.payer, w.mint, w.recipient)), rule: signerapi.RuleComputeUnitLimit},
		{name: "compute_unit_limit unset", policy: w.policyYAML("max_compute_unit_limit: 100000\n"), wire: signertest.Wire(t, w.payer, st(t, 5, w.payer, w.mint, w.recipient)), rule: signerapi.RuleComputeUnitLimit},
		{name: "instruction: the key pays for a stranger's account", policy: strings.Replace(w.policyYAML(""), "programs: [", "programs: [ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL, ", 1), wire: signertest.Wire(t, w.payer, signertest.CreateATA(w.payer, w.stranger, w.mint)), rule: signerapi.RuleInstruction},
		{name: "allowed: the key pays for a recipient's account", policy: strings.Replace(w.policyYAML(""), "programs: [", "programs: [ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL, ", 1), wire: signertest.Wire(t, w.payer, signertest.CreateATA(w.payer, w.recipient, w.mint), st(t, 5, w.payer, w.mint, w.recipient)), amount: 5},
		{name: "instruction: durable nonce", policy: "programs: [11111111111111111111111111111111]\n", wire: signertest.Wire(t, w.payer, signertest.AdvanceNonce(w.stranger, w.payer)), rule: signerapi.RuleInstruction},
		{name: "not_signer", key: w.stranger, wire: signertest.Wire(t, w.payer, st(t, 5, w.payer, w.mint, w.recipient)), rule: signerapi.RuleNotSigner},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol := p
			if tc.policy != "" {
				var err error
				if pol, err = signer.ParsePolicy([]byte(tc.policy)); err != nil {
					t.Fatal(err)
				}
			}
			key := tc.key
			if key.IsZero() {
				key = w.payer
			}
			v, err := evaluate(t, pol, key, tc.wire)
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if v.Amount != tc.amount {
					t.Fatalf("amount %d, want %d", v.Amount, tc.amount)
				}
				return
			}
			var r *signer.Refusal
			if !errors.As(err, &r) || r.Rule != tc.rule {
				t.Fatalf("got %v, want a refusal by rule %s", err, tc.rule)
			}
			if !strings.Contains(r.Error(), tc.rule) {
				t.Errorf("refusal %q does not name its rule", r.Error())
			}
		})
	}
}

// TestFeePayerOnly: a fee-payer key co-signs a client's transfer, and
// refuses every trick that would make it pay more than the fee: being an
// authority or source of a transfer, the payer of an account creation,
// or not the fee payer at all.
func TestFeePayerOnly(t *testing.T) {
	w := newWorld(t)
	p := w.policy(t, "fee_payer_only: true\n")
	client := signertest.NewAddress(t)
	st := signertest.TransferChecked
	ok := signertest.Wire(t, w.payer, signertest.ComputeUnitLimit(20000), signertest.ComputeUnitPrice(1), st(t, 1000, client, w.mint, w.recipient))
	if v, err := evaluate(t, p, w.payer, ok); err != nil || v.Amount != 1000 {
		t.Fatalf("x402-shaped transaction: %+v, %v", v, err)
	}
	tricks := map[string][]byte{
		"fee payer is the transfer authority": signertest.Wire(t, w.payer, st(t, 1000, w.payer, w.mint, w.recipient)),
		"fee payer signs a memo":              signertest.Wire(t, w.payer, st(t, 1000, client, w.mint, w.recipient), signertest.Memo("x", w.payer)),
		"fee payer is not the fee payer":      signertest.Wire(t, client, st(t, 1000, client, w.mint, w.recipient), signertest.Memo("x", w.payer)),
	}
	for name, wire := range tricks {
		t.Run(name, func(t *testing.T) {
			_, err := evaluate(t, p, w.payer, wire)
			var r *signer.Refusal
			if !errors.As(err, &r) || r.Rule != signerapi.RuleFeePayer {
				t.Fatalf("got %v, want rule fee_payer", err)
			}
		})
	}
	t.Run("fee payer pays an account creation", func(t *testing.T) {
		p := w.policy(t, "fee_payer_only: true\n")
		pp, err := signer.ParsePolicy([]byte(strings.Replace(w.policyYAML("fee_payer_only: true\n"), "programs: [", "programs: [ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL, ", 1)))
		if err != nil {
			t.Fatal(err)
		}
		_ = p
		_, err = evaluate(t, pp, w.payer, signertest.Wire(t, w.payer, signertest.CreateATA(w.payer, w.recipient, w.mint), st(t, 1000, client, w.mint, w.recipient)))
		var r *signer.Refusal
		if !errors.As(err, &r) || r.Rule != signerapi.RuleFeePayer {
			t.Fatalf("got %v, want rule fee_payer", err)
		}
	})
}

// TestParseMalformed: bytes that are not one well-formed transaction
// wrap ErrMalformed and name what is wrong.
func TestParseMalformed(t *testing.T) {
	w := newWorld(t)
	good := signertest.Wire(t, w.payer, signertest.TransferChecked(t, 5, w.payer, w.mint, w.recipient))
	if _, err := signer.Parse(good); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":                    nil,
		"truncated":                good[:len(good)-1],
		"trailing bytes":           append(append([]byte(nil), good...), 0),
		"no signatures":            append([]byte{0}, good[65:]...),
		"two slots for one signer": append(append([]byte{2}, make([]byte, 64)...), good[1:]...),
		"too large":                make([]byte, signerapi.MaxTransactionSize+1),
		"non-canonical length":     append([]byte{0x81, 0x00}, good[1:]...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := signer.Parse(b); !errors.Is(err, signer.ErrMalformed) {
				t.Fatalf("Parse = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestPolicyFile: the policy parser refuses unknown keys, bad addresses,
// duplicates and out-of-range values, naming them.
func TestPolicyFile(t *testing.T) {
	w := newWorld(t)
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":   {"programs: []\nmax_per_txn: 5\n", "max_per_txn"},
		"bad address":   {"mints: [notbase58!]\n", "mints"},
		"duplicate":     {fmt.Sprintf("mints: [%s, %s]\n", w.mint, w.mint), "twice"},
		"window period": {"window: {period: 0s, max: 1}\n", "window.period"},
		"two documents": {"max_per_tx: 1\n---\nmax_per_tx: 2\n", "more than one"},
		"duplicate key": {"max_per_tx: 1\nmax_per_tx: 2\n", "already defined"},
		"huge max":      {"max_per_tx: 18446744073709551615\n", "exceeds"},
		"empty":         {"", "empty"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := signer.ParsePolicy([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePolicy = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestMaxFee: the most a transaction can cost its fee payer, with and
// without compute-budget settings, rounded up and never overflowing.
func TestMaxFee(t *testing.T) {
	w := newWorld(t)
	st := signertest.TransferChecked(t, 1, w.payer, w.mint, w.recipient)
	for _, tc := range []struct {
		name string
		wire []byte
		want uint64
	}{
		{"base fee only", signertest.Wire(t, w.payer, st), 5000},
		{"price and limit", signertest.Wire(t, w.payer, signertest.ComputeUnitLimit(20000), signertest.ComputeUnitPrice(1_000_000), st), 5000 + 20000},
		{"price rounds up", signertest.Wire(t, w.payer, signertest.ComputeUnitLimit(3), signertest.ComputeUnitPrice(1), st), 5000 + 1},
		{"default limit per instruction", signertest.Wire(t, w.payer, signertest.ComputeUnitPrice(1_000_000), st, signertest.Memo("m", w.payer)), 5000 + 400000},
		{"huge price", signertest.Wire(t, w.payer, signertest.ComputeUnitLimit(1_400_000), signertest.ComputeUnitPrice(1<<63), st), 1<<63 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := signer.Parse(tc.wire)
			if err != nil {
				t.Fatal(err)
			}
			if got := signer.MaxFee(tx); got != tc.want {
				t.Fatalf("MaxFee = %d, want %d", got, tc.want)
			}
		})
	}
}
