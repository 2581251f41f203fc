package signer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/gagliardetto/solana-go"
	"go.yaml.in/yaml/v3"

	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/wallet"
)

// Limits of the configuration file.
const (
	// MaxConfigSize caps the configuration file.
	MaxConfigSize = 64 << 10
	// MaxListEntries caps each list of the policy (programs, mints,
	// recipients).
	MaxListEntries = 64
	// DefaultMaxComputeUnitPrice caps the compute-unit price of a
	// transaction whose fees the signer pays, when the policy sets none:
	// 5 lamports per unit, the x402 exact scheme's cap.
	DefaultMaxComputeUnitPrice = 5_000_000
	// MaxWindowPeriod caps a rolling window's period.
	MaxWindowPeriod = 366 * 24 * time.Hour
	// DefaultApprovalTimeout is how long a request above approve_above
	// waits for a person when the config sets none.
	DefaultApprovalTimeout = 5 * time.Minute
)

// Duration is a time.Duration written as a Go duration string in YAML.
type Duration time.Duration

// UnmarshalYAML parses "24h", "90s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// Window is a rolling-window cap: at most Max base units reserved in any
// Period overall, and at most PerPrincipal by one principal (the token's
// subject, or its id when it names none).
type Window struct {
	Period Duration `yaml:"period"`
	// Max caps every principal together. If zero, nothing may move.
	Max uint64 `yaml:"max"`
	// PerPrincipal caps one principal. If zero, only Max applies.
	PerPrincipal uint64 `yaml:"per_principal"`
	// MaxFees caps the lamports of fees the key may pay in Period (each
	// transaction counted at the most it can cost: 5000 lamports per
	// signature plus its compute-unit price times its limit). If zero,
	// fees are not capped over the window: set it for any key that pays
	// fees, or a token holder can burn SOL with many transactions that
	// move almost nothing.
	MaxFees uint64 `yaml:"max_fees"`
}

// Policy is what the signer signs: default deny, deny wins. Every rule
// refuses with its own reason code (signerapi.Rule*).
type Policy struct {
	// Programs are the only programs a transaction may invoke. Empty:
	// none (nothing is signed).
	Programs []string `yaml:"programs"`
	// Mints are the SPL mints that may move. Empty: none.
	Mints []string `yaml:"mints"`
	// Recipients, if non-empty, are the owners whose associated token
	// accounts are the only allowed destinations.
	Recipients []string `yaml:"recipients"`
	// MaxPerTx caps the base units one transaction moves. Zero: nothing
	// may move.
	MaxPerTx uint64 `yaml:"max_per_tx"`
	// Window, if set, is the rolling-window cap. If nil, no rolling cap.
	Window *Window `yaml:"window"`
	// ApproveAbove, if non-zero, holds transactions moving more than it
	// until a person approves.
	ApproveAbove uint64 `yaml:"approve_above"`
	// FeePayerOnly makes the key a fee payer and nothing else: it must be
	// the transaction's fee payer and appear in no instruction's accounts
	// (so it is never the authority or source of a transfer, nor the payer
	// of an account creation). The amounts capped are then those of the
	// transfers it sponsors.
	FeePayerOnly bool `yaml:"fee_payer_only"`
	// MaxComputeUnitPrice caps the compute-unit price (micro-lamports)
	// when the key pays the fees. If zero, DefaultMaxComputeUnitPrice.
	MaxComputeUnitPrice uint64 `yaml:"max_compute_unit_price"`
	// MaxComputeUnitLimit, if non-zero, caps the compute-unit limit when
	// the key pays the fees, and requires one to be set (the fee is price
	// times limit). If zero, not checked.
	MaxComputeUnitLimit uint32 `yaml:"max_compute_unit_limit"`
	// SignMessages allows off-chain message signing (messages starting
	// with signerapi.OffchainMessagePrefix). If false, refused.
	SignMessages bool `yaml:"sign_messages"`

	programs   map[solana.PublicKey]bool
	mints      []solana.PublicKey
	recipients []solana.PublicKey
	// atas maps an associated token account of a recipient to its owner;
	// srcATA maps (for inferring a Transfer's mint) nothing until used.
	atas map[solana.PublicKey]solana.PublicKey
}

// KeyRef names where the signer's Solana key comes from.
type KeyRef struct {
	// Secret is the KBS secret holding a solana-keygen keypair file's
	// content. Required.
	Secret string `yaml:"secret"`
}

// Config is chatmcp-signer's configuration file (docs/payments.md).
type Config struct {
	// Listen is the TCP address. If empty, 127.0.0.1:8446.
	Listen string `yaml:"listen"`
	// Data holds admin.token, token.key, audit.key, audit.jsonl,
	// tls-pins.json and the budget ledger (signer.db). If empty,
	// ./signer-data, relative to the config file.
	Data string `yaml:"data"`
	// DB is a postgres:// DSN for the budget ledger. If empty, SQLite in
	// Data.
	DB string `yaml:"db"`
	// KBS is the key broker's URL. Required.
	KBS string `yaml:"kbs"`
	// Key names the key's KBS secret. Required.
	Key KeyRef `yaml:"key"`
	// Policy is what the key signs.
	Policy Policy `yaml:"policy"`
	// ApprovalTimeout is how long a held request waits for a person. If
	// zero, DefaultApprovalTimeout.
	ApprovalTimeout Duration `yaml:"approval_timeout"`
}

// LoadConfig reads and parses the configuration file at path; a relative
// data directory is relative to the file.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if !filepath.IsAbs(cfg.Data) {
		cfg.Data = filepath.Join(filepath.Dir(path), cfg.Data)
	}
	return cfg, nil
}

func decodeStrict(b []byte, v any) error {
	if len(b) > MaxConfigSize {
		return fmt.Errorf("larger than %d bytes", MaxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty document")
		}
		return fmt.Errorf("parsing: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("parsing: more than one YAML document")
	}
	return nil
}

// ParseConfig parses a configuration strictly (unknown or duplicate keys,
// several documents and invalid values are errors) and validates it.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := decodeStrict(b, &c); err != nil {
		return nil, err
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8446"
	}
	if c.Data == "" {
		c.Data = "signer-data"
	}
	if c.KBS == "" {
		return nil, errors.New("kbs: required (the key broker releasing the signer's key)")
	}
	if u, err := url.Parse(c.KBS); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("kbs: %q is not an http(s) URL", c.KBS)
	}
	if c.Key.Secret == "" {
		return nil, errors.New("key.secret: required (the KBS secret holding the keypair)")
	}
	switch t := time.Duration(c.ApprovalTimeout); {
	case t == 0:
		c.ApprovalTimeout = Duration(DefaultApprovalTimeout)
	case t < 0 || t > time.Hour:
		return nil, fmt.Errorf("approval_timeout %s not in (0, 1h]", t)
	}
	if err := c.Policy.compile(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return &c, nil
}

// ParsePolicy parses a policy document on its own (the policy: member of
// the configuration) strictly and validates it.
func ParsePolicy(b []byte) (*Policy, error) {
	var p Policy
	if err := decodeStrict(b, &p); err != nil {
		return nil, err
	}
	if err := p.compile(); err != nil {
		return nil, err
	}
	return &p, nil
}

func parseKeys(field string, l []string) ([]solana.PublicKey, error) {
	if len(l) > MaxListEntries {
		return nil, fmt.Errorf("%s: %d entries exceed %d", field, len(l), MaxListEntries)
	}
	out := make([]solana.PublicKey, 0, len(l))
	seen := map[solana.PublicKey]bool{}
	for _, s := range l {
		// wallet.ParseAddress insists on canonical base58, so one key has
		// one spelling in a policy.
		a, err := wallet.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %v", field, s, err)
		}
		k := solana.PublicKeyFromBytes(a.PublicKey())
		if seen[k] {
			return nil, fmt.Errorf("%s: %s listed twice", field, s)
		}
		seen[k] = true
		out = append(out, k)
	}
	return out, nil
}

// compile validates the policy and precomputes its sets: the associated
// token accounts of every recipient for every mint under both token
// programs, so evaluation derives no address per request.
func (p *Policy) compile() error {
	progs, err := parseKeys("programs", p.Programs)
	if err != nil {
		return err
	}
	p.programs = map[solana.PublicKey]bool{}
	for _, k := range progs {
		p.programs[k] = true
	}
	if p.mints, err = parseKeys("mints", p.Mints); err != nil {
		return err
	}
	if p.recipients, err = parseKeys("recipients", p.Recipients); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		v    uint64
	}{{"max_per_tx", p.MaxPerTx}, {"approve_above", p.ApproveAbove}} {
		if v.v > math.MaxInt64 {
			return fmt.Errorf("%s %d exceeds %d", v.name, v.v, int64(math.MaxInt64))
		}
	}
	if w := p.Window; w != nil {
		if d := time.Duration(w.Period); d < time.Second || d > MaxWindowPeriod {
			return fmt.Errorf("window.period %s not in [1s, %s]", d, MaxWindowPeriod)
		}
		if w.Max > math.MaxInt64 || w.PerPrincipal > math.MaxInt64 || w.MaxFees > math.MaxInt64 {
			return fmt.Errorf("window caps exceed %d", int64(math.MaxInt64))
		}
	}
	p.atas = map[solana.PublicKey]solana.PublicKey{}
	for _, r := range p.recipients {
		for _, m := range p.mints {
			for _, prog := range []solana.PublicKey{TokenProgram, Token2022} {
				a, err := AssociatedTokenAddress(r, m, prog)
				if err != nil {
					return fmt.Errorf("recipients: deriving the token account of %s: %v", r, err)
				}
				p.atas[a] = r
			}
		}
	}
	return nil
}

// Refusal is a policy refusal: Rule is one of signerapi's Rule codes.
type Refusal struct {
	Rule string
	Msg  string
}

func (r *Refusal) Error() string { return "refused by policy rule " + r.Rule + ": " + r.Msg }

func refuse(rule, format string, args ...any) *Refusal {
	return &Refusal{Rule: rule, Msg: fmt.Sprintf(format, args...)}
}

// Verdict is what a policy allows a transaction to do.
type Verdict struct {
	// Amount is the base units counted against the caps.
	Amount uint64
	// Mint and Recipient describe the first counted transfer (for the
	// approval prompt and the audit log).
	Mint, Recipient string
	// Fee is the most lamports the transaction can cost the key in fees:
	// zero unless the key is the fee payer.
	Fee uint64
	// NeedsApproval is true above approve_above.
	NeedsApproval bool
}

// Fee constants of the Solana runtime.
const (
	LamportsPerSignature    = 5000
	DefaultUnitsPerIx       = 200_000
	MaxComputeUnits         = 1_400_000
	microLamportsPerLamport = 1_000_000
	// TokenAccountRent is the rent-exempt deposit of a 165-byte token
	// account, which the payer of an associated token account creation
	// pays.
	TokenAccountRent = 2_039_280
)

// MaxFee is the most lamports tx can cost its fee payer: the base fee per
// signature plus the priority fee, its compute-unit price times its limit
// (the runtime's default limit when none is set), rounded up.
func MaxFee(tx *Tx) uint64 {
	fee := uint64(LamportsPerSignature) * uint64(len(tx.Signers))
	if tx.ComputeUnitPrice == nil {
		return fee
	}
	var limit uint64
	if tx.ComputeUnitLimit != nil {
		limit = uint64(*tx.ComputeUnitLimit)
	} else {
		for _, ins := range tx.Instructions {
			if ins.Program != ComputeBudget {
				limit += DefaultUnitsPerIx
			}
		}
	}
	limit = min(limit, MaxComputeUnits)
	// price ≤ 2^64 and limit ≤ 1.4e6: compute in two parts to avoid overflow.
	p := *tx.ComputeUnitPrice
	hi, lo := p/microLamportsPerLamport, p%microLamportsPerLamport
	prio := hi*limit + (lo*limit+microLamportsPerLamport-1)/microLamportsPerLamport
	if prio > math.MaxInt64-fee {
		return math.MaxInt64
	}
	return fee + prio
}

// Evaluate decides whether key may sign tx. Every rule is checked; the
// first that refuses, in a fixed order, is named. The caps that need the
// ledger (window, window_principal, token_budget) are not checked here.
func (p *Policy) Evaluate(tx *Tx, key solana.PublicKey) (*Verdict, error) {
	if tx.LookupTables > 0 {
		return nil, refuse(signerapi.RuleLookupTables, "the transaction loads accounts from %d address lookup tables", tx.LookupTables)
	}
	if tx.SignerIndex(key) < 0 {
		return nil, refuse(signerapi.RuleNotSigner, "%s is not a required signer of the transaction", key)
	}
	for _, prog := range tx.Programs {
		if !p.programs[prog] {
			return nil, refuse(signerapi.RuleProgram, "program %s is not allowed", prog)
		}
	}
	for _, ins := range tx.Instructions {
		if ins.Kind == KindUnsupported {
			return nil, refuse(signerapi.RuleInstruction, "instruction %s is never signed", ins.Name)
		}
	}
	feePayer := tx.FeePayer == key
	if p.FeePayerOnly {
		if !feePayer {
			return nil, refuse(signerapi.RuleFeePayer, "a fee-payer key signs only as the fee payer")
		}
		for i, ins := range tx.Instructions {
			for _, a := range ins.Accounts {
				if a == key {
					return nil, refuse(signerapi.RuleFeePayer, "the fee payer is an account of instruction %d (%s)", i, ins.Kind)
				}
			}
		}
	}
	if feePayer && tx.ComputeUnitPrice != nil {
		max := p.MaxComputeUnitPrice
		if max == 0 {
			max = DefaultMaxComputeUnitPrice
		}
		if *tx.ComputeUnitPrice > max {
			return nil, refuse(signerapi.RuleComputeUnitPrice, "compute-unit price %d exceeds %d micro-lamports", *tx.ComputeUnitPrice, max)
		}
	}
	if feePayer && p.MaxComputeUnitLimit > 0 {
		if tx.ComputeUnitLimit == nil || *tx.ComputeUnitLimit > p.MaxComputeUnitLimit {
			return nil, refuse(signerapi.RuleComputeUnitLimit, "the compute-unit limit must be set and at most %d", p.MaxComputeUnitLimit)
		}
	}
	for i, ins := range tx.Instructions {
		// Creating an associated token account costs its payer the rent
		// deposit: only for a listed recipient's account, and counted with
		// the fees.
		if ins.Kind == KindATACreate && ins.Accounts[0] == key {
			if _, ok := p.atas[ins.Accounts[1]]; !ok || ins.Accounts[2] != p.atas[ins.Accounts[1]] {
				return nil, refuse(signerapi.RuleInstruction, "instruction %d: the key would pay for an account that is not an allowed recipient's token account", i)
			}
		}
	}
	for _, t := range tx.SOLTransfers {
		if t.From == key && t.Lamports > 0 {
			return nil, refuse(signerapi.RuleSOLTransfer, "%d lamports would leave the signer's key", t.Lamports)
		}
	}
	v := &Verdict{}
	for i, t := range tx.TokenTransfers {
		ours := t.Authority == key
		if !ours {
			// A multisig authority's signers follow the fixed accounts.
			for _, ins := range tx.Instructions {
				if ins.Kind == KindTransfer && len(ins.Accounts) > 3 && ins.Accounts[0] == t.Source && ins.Accounts[1] == t.Destination {
					ours = ours || contains(ins.Accounts[3:], key)
				}
				if ins.Kind == KindTransferChecked && len(ins.Accounts) > 4 && ins.Accounts[0] == t.Source && ins.Accounts[2] == t.Destination {
					ours = ours || contains(ins.Accounts[4:], key)
				}
			}
		}
		mint := t.Mint
		if !t.Checked {
			mint = p.inferMint(t)
			if mint.IsZero() {
				return nil, refuse(signerapi.RuleMint, "transfer %d names no mint and its source is no allowed mint's associated token account", i)
			}
		}
		if !contains(p.mints, mint) {
			return nil, refuse(signerapi.RuleMint, "mint %s is not allowed", mint)
		}
		if len(p.recipients) > 0 {
			owner, ok := p.atas[t.Destination]
			if !ok {
				return nil, refuse(signerapi.RuleRecipient, "destination %s is not the associated token account of an allowed recipient", t.Destination)
			}
			if v.Recipient == "" {
				v.Recipient = owner.String()
			}
		}
		if !ours && !p.FeePayerOnly {
			continue
		}
		if v.Amount+t.Amount < v.Amount || v.Amount+t.Amount > math.MaxInt64 {
			return nil, refuse(signerapi.RuleMaxPerTx, "the amounts overflow")
		}
		v.Amount += t.Amount
		if v.Mint == "" {
			v.Mint = mint.String()
		}
	}
	if v.Amount > p.MaxPerTx {
		return nil, refuse(signerapi.RuleMaxPerTx, "%d base units exceed max_per_tx %d", v.Amount, p.MaxPerTx)
	}
	if feePayer {
		v.Fee = MaxFee(tx)
	}
	for _, ins := range tx.Instructions {
		if ins.Kind == KindATACreate && ins.Accounts[0] == key {
			v.Fee += TokenAccountRent
		}
	}
	v.NeedsApproval = p.ApproveAbove > 0 && v.Amount > p.ApproveAbove
	return v, nil
}

// inferMint returns the allowed mint whose associated token account of the
// transfer's authority is its source, or zero.
func (p *Policy) inferMint(t TokenTransfer) solana.PublicKey {
	for _, m := range p.mints {
		a, err := AssociatedTokenAddress(t.Authority, m, t.Program)
		if err == nil && a == t.Source {
			return m
		}
	}
	return solana.PublicKey{}
}

func contains(l []solana.PublicKey, k solana.PublicKey) bool {
	for _, x := range l {
		if x == k {
			return true
		}
	}
	return false
}
