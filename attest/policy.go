package attest

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Policy is the one attestation policy format shared by every TEE. Its YAML
// form is documented in docs/attestation.md. The zero Policy accepts nothing:
// Allow is empty, so every TEE type is "not allowed".
type Policy struct {
	// Allow lists the accepted TEE types. Sim is accepted only when listed.
	Allow []TEE `yaml:"allow"`
	// Debug accepts debug-mode environments. If false (the default), they
	// are rejected.
	Debug bool `yaml:"debug"`
	// MaxAge rejects evidence whose own timestamp is older than this. Zero
	// means not checked; evidence that carries no time is never checked.
	MaxAge Duration `yaml:"max_age"`

	SEVSNP *SNPPolicy   `yaml:"sevsnp"`
	TDX    *TDXPolicy   `yaml:"tdx"`
	Nitro  *NitroPolicy `yaml:"nitro"`
	TPM    *TPMPolicy   `yaml:"tpm"`
	Sim    *SimPolicy   `yaml:"sim"`
}

// SNPPolicy constrains AMD SEV-SNP reports.
type SNPPolicy struct {
	// Measurement lists accepted launch measurements (48 bytes). If empty,
	// any measurement is accepted, with a warning.
	Measurement []Hex `yaml:"measurement"`
	// VMPL is the required VM privilege level. If nil, 0.
	VMPL *int `yaml:"vmpl"`
	// MinTCB is the lowest accepted reported TCB. If nil, not checked.
	MinTCB *TCBVersion `yaml:"min_tcb"`
}

// TDXPolicy constrains Intel TDX quotes.
type TDXPolicy struct {
	// Measurement lists accepted MRTD values (48 bytes). If empty, any.
	Measurement []Hex `yaml:"measurement"`
	// RTMRs pins runtime measurement registers by index 0..3. If nil, not
	// checked.
	RTMRs map[int]Hex `yaml:"rtmrs"`
	// TCBStatus lists accepted TCB statuses from Intel's collateral
	// ("UpToDate", ...). If empty, not checked; when set, evidence verified
	// without collateral has no status and is rejected.
	TCBStatus []string `yaml:"tcb_status"`
}

// NitroPolicy constrains AWS Nitro Enclaves attestation documents.
type NitroPolicy struct {
	// Measurement lists accepted PCR0 values (48 bytes). If empty, any.
	Measurement []Hex `yaml:"measurement"`
	// PCRs pins other PCRs by index. If nil, not checked.
	PCRs map[int]Hex `yaml:"pcrs"`
}

// TPMPolicy constrains TPM quotes.
type TPMPolicy struct {
	// Measurement lists accepted quote PCR digests. If empty, any.
	Measurement []Hex `yaml:"measurement"`
	// PCRs pins PCR values by index. If nil, not checked.
	PCRs map[int]Hex `yaml:"pcrs"`
}

// SimPolicy constrains simulated evidence.
type SimPolicy struct {
	// Measurement lists accepted simulated measurements (48 bytes). If
	// empty, any.
	Measurement []Hex `yaml:"measurement"`
}

// Duration is a time.Duration written as a Go duration string ("10m").
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	if v < 0 {
		return fmt.Errorf("line %d: negative duration %s", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ParsePolicy decodes a YAML policy strictly (unknown keys and duplicate keys
// are errors) and validates it.
func ParsePolicy(b []byte) (*Policy, error) {
	if len(b) > MaxPolicySize {
		return nil, fmt.Errorf("policy of %d bytes exceeds the %d-byte limit", len(b), MaxPolicySize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("policy: more than one YAML document")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// LoadPolicy reads and parses a policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// measurementSize is the measurement length each TEE produces.
var measurementSize = map[TEE]int{SEVSNP: 48, TDX: 48, Nitro: 48, Sim: 48, TPM: 32}

// Validate checks that the policy is well formed.
func (p *Policy) Validate() error {
	for _, t := range p.Allow {
		if !t.Valid() {
			return fmt.Errorf("policy: allow: unknown TEE type %q", t)
		}
	}
	checkList := func(tee TEE, l []Hex) error {
		for _, m := range l {
			if len(m) != measurementSize[tee] {
				return fmt.Errorf("policy: %s.measurement: %d bytes, want %d", tee, len(m), measurementSize[tee])
			}
		}
		return nil
	}
	checkRegs := func(tee TEE, name string, regs map[int]Hex, max, size int) error {
		for i, v := range regs {
			if i < 0 || i > max {
				return fmt.Errorf("policy: %s.%s: index %d not in 0..%d", tee, name, i, max)
			}
			if size > 0 && len(v) != size {
				return fmt.Errorf("policy: %s.%s[%d]: %d bytes, want %d", tee, name, i, len(v), size)
			}
		}
		return nil
	}
	if s := p.SEVSNP; s != nil {
		if err := checkList(SEVSNP, s.Measurement); err != nil {
			return err
		}
		if s.VMPL != nil && (*s.VMPL < 0 || *s.VMPL > 3) {
			return fmt.Errorf("policy: sevsnp.vmpl: %d not in 0..3", *s.VMPL)
		}
	}
	if s := p.TDX; s != nil {
		if err := checkList(TDX, s.Measurement); err != nil {
			return err
		}
		if err := checkRegs(TDX, "rtmrs", s.RTMRs, 3, 48); err != nil {
			return err
		}
	}
	if s := p.Nitro; s != nil {
		if err := checkList(Nitro, s.Measurement); err != nil {
			return err
		}
		if err := checkRegs(Nitro, "pcrs", s.PCRs, 31, 48); err != nil {
			return err
		}
	}
	if s := p.TPM; s != nil {
		if err := checkList(TPM, s.Measurement); err != nil {
			return err
		}
		if err := checkRegs(TPM, "pcrs", s.PCRs, 23, 0); err != nil {
			return err
		}
	}
	if s := p.Sim; s != nil {
		if err := checkList(Sim, s.Measurement); err != nil {
			return err
		}
	}
	return nil
}

// Allows reports whether the policy accepts TEE type t at all.
func (p *Policy) Allows(t TEE) bool { return p != nil && slices.Contains(p.Allow, t) }

// EvalOptions are the caller's inputs to Evaluate.
type EvalOptions struct {
	// Now is the time evidence age is judged at. If zero, time.Now().
	Now time.Time
	// ReportData is the expected report data, zero-padded to the claims'
	// length before comparison. If nil, report data is not checked.
	ReportData []byte
	// Warn receives one line for each check the policy leaves open (an
	// empty measurement list). If nil, warnings are dropped.
	Warn func(msg string)
}

// clockSkew is how far in the future an evidence timestamp may be.
const clockSkew = time.Minute

// Evaluate applies the policy to verified claims. Checks run in a fixed
// order (TEE type, report data, time, debug, VMPL, TCB, measurement,
// registers) and the first failure is returned as an *Error. A nil policy
// rejects everything.
func (p *Policy) Evaluate(c *Claims, opts *EvalOptions) error {
	if opts == nil {
		opts = &EvalOptions{}
	}
	warn := opts.Warn
	if warn == nil {
		warn = func(string) {}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if p == nil {
		return Errorf(CheckNotAllowed, "no policy: nothing is accepted")
	}
	if c == nil {
		return Errorf(CheckMalformed, "no claims")
	}
	if !p.Allows(c.TEE) {
		return Errorf(CheckNotAllowed, "TEE type %s is not allowed by the policy (allow: %v)", c.TEE, p.Allow)
	}
	if opts.ReportData != nil {
		want, err := PadReportData(opts.ReportData, len(c.ReportData))
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(want, c.ReportData) != 1 {
			return Errorf(CheckReportData, "report data mismatch: evidence has %x", []byte(c.ReportData))
		}
	}
	if !c.Time.IsZero() {
		if c.Time.After(now.Add(clockSkew)) {
			return Errorf(CheckExpired, "evidence time %s is in the future (now %s)", c.Time.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		if p.MaxAge > 0 && now.Sub(c.Time) > time.Duration(p.MaxAge) {
			return Errorf(CheckExpired, "evidence from %s is older than max_age %s", c.Time.UTC().Format(time.RFC3339), time.Duration(p.MaxAge))
		}
	}
	if c.Debug && !p.Debug {
		return Errorf(CheckDebug, "debug mode not allowed: the %s environment can be inspected by its host", c.TEE)
	}
	var list []Hex
	switch c.TEE {
	case SEVSNP:
		sp := p.SEVSNP
		if sp == nil {
			sp = &SNPPolicy{}
		}
		wantVMPL := 0
		if sp.VMPL != nil {
			wantVMPL = *sp.VMPL
		}
		if c.VMPL == nil || *c.VMPL != wantVMPL {
			got := "none"
			if c.VMPL != nil {
				got = fmt.Sprint(*c.VMPL)
			}
			return Errorf(CheckVMPL, "report VMPL %s, policy requires %d", got, wantVMPL)
		}
		if sp.MinTCB != nil {
			if c.TCB == nil || !c.TCB.AtLeast(*sp.MinTCB) {
				got := "none"
				if c.TCB != nil {
					got = c.TCB.String()
				}
				return Errorf(CheckTCB, "reported TCB (%s) is below the minimum (%s)", got, sp.MinTCB)
			}
		}
		list = sp.Measurement
	case TDX:
		if tp := p.TDX; tp != nil {
			list = tp.Measurement
			if len(tp.TCBStatus) > 0 && !slices.Contains(tp.TCBStatus, c.TCBStatus) {
				got := c.TCBStatus
				if got == "" {
					got = "unknown (no collateral)"
				}
				return Errorf(CheckTCB, "TDX TCB status %s not in %v", got, tp.TCBStatus)
			}
			// In index order, so the error names the same RTMR every run.
			for _, i := range slices.Sorted(maps.Keys(tp.RTMRs)) {
				if i >= len(c.RTMRs) || !bytes.Equal(c.RTMRs[i], tp.RTMRs[i]) {
					return Errorf(CheckMeasurement, "RTMR%d does not match the policy", i)
				}
			}
		}
	case Nitro:
		if np := p.Nitro; np != nil {
			list = np.Measurement
			if err := checkPCRs(c, np.PCRs); err != nil {
				return err
			}
		}
	case TPM:
		if tp := p.TPM; tp != nil {
			list = tp.Measurement
			if err := checkPCRs(c, tp.PCRs); err != nil {
				return err
			}
		}
	case Sim:
		if sp := p.Sim; sp != nil {
			list = sp.Measurement
		}
	}
	if len(list) == 0 {
		warn(fmt.Sprintf("warning: policy has no %s measurement list: any measurement is accepted (got %x)", c.TEE, []byte(c.Measurement)))
		return nil
	}
	for _, m := range list {
		if bytes.Equal(m, c.Measurement) {
			return nil
		}
	}
	return Errorf(CheckMeasurement, "measurement %x is not in the policy's %s list", []byte(c.Measurement), c.TEE)
}

func checkPCRs(c *Claims, want map[int]Hex) error {
	idx := make([]int, 0, len(want))
	for i := range want {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		got, ok := c.PCRs[i]
		if !ok || !bytes.Equal(got, want[i]) {
			return Errorf(CheckMeasurement, "PCR%d does not match the policy", i)
		}
	}
	return nil
}
