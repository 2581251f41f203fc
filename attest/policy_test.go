package attest

import (
	"strings"
	"testing"
	"time"
)

var (
	m48a = strings.Repeat("aa", 48)
	m48b = strings.Repeat("bb", 48)
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // "" = valid
	}{
		{"minimal", "allow: [sevsnp]\n", ""},
		{"full", `allow: [sevsnp, tdx, nitro, tpm, sim]
debug: false
max_age: 10m
sevsnp:
  measurement: [` + m48a + `, 0X` + strings.ToUpper(m48b) + `]
  vmpl: 1
  min_tcb: {bootloader: 3, tee: 0, snp: 8, microcode: 115}
tdx:
  measurement: [` + m48a + `]
  rtmrs: {0: ` + m48a + `, 3: ` + m48b + `}
  tcb_status: [UpToDate]
nitro:
  measurement: [` + m48a + `]
  pcrs: {1: ` + m48a + `, 31: ` + m48b + `}
tpm:
  measurement: [` + strings.Repeat("cc", 32) + `]
  pcrs: {7: abcd}
sim:
  measurement: [` + m48a + `]
`, ""},
		{"unknown key", "allow: [sim]\ncolour: blue\n", "field colour not found"},
		{"unknown nested key", "allow: [sevsnp]\nsevsnp:\n  vmpl0: 1\n", "field vmpl0 not found"},
		{"duplicate key", "allow: [sim]\nallow: [tdx]\n", "already defined"},
		{"duplicate nested key", "sevsnp:\n  vmpl: 0\n  vmpl: 1\n", "already defined"},
		{"unknown TEE", "allow: [sgx]\n", `unknown TEE type "sgx"`},
		{"bad hex", "sim:\n  measurement: [zz]\n", "invalid hex"},
		{"odd hex", "sim:\n  measurement: [abc]\n", "invalid hex"},
		{"wrong length", "sevsnp:\n  measurement: [abcd]\n", "sevsnp.measurement: 2 bytes, want 48"},
		{"wrong TPM length", "tpm:\n  measurement: [" + m48a + "]\n", "tpm.measurement: 48 bytes, want 32"},
		{"rtmr index", "tdx:\n  rtmrs: {4: " + m48a + "}\n", "index 4 not in 0..3"},
		{"rtmr length", "tdx:\n  rtmrs: {0: abcd}\n", "tdx.rtmrs[0]: 2 bytes, want 48"},
		{"nitro pcr index", "nitro:\n  pcrs: {32: " + m48a + "}\n", "index 32 not in 0..31"},
		{"tpm pcr index", "tpm:\n  pcrs: {24: ab}\n", "index 24 not in 0..23"},
		{"vmpl range", "sevsnp:\n  vmpl: 4\n", "vmpl: 4 not in 0..3"},
		{"bad duration", "max_age: soon\n", "invalid duration"},
		{"duration without unit", "max_age: 10\n", "missing unit"},
		{"negative duration", "max_age: -1m\n", "negative duration"},
		{"two documents", "allow: [sim]\n---\nallow: [tdx]\n", "more than one YAML document"},
		{"empty", "", "EOF"},
		{"not a mapping", "- sim\n", "cannot unmarshal"},
		{"too large", "allow: [sim]\n" + strings.Repeat("#", MaxPolicySize), "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParsePolicy: %v", err)
				}
				if len(p.Allow) == 0 {
					t.Fatal("allow list lost")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParsePolicy error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParsePolicyValues(t *testing.T) {
	p, err := ParsePolicy([]byte("allow: [sevsnp]\nmax_age: 90s\nsevsnp:\n  measurement: [0x" + m48a + "]\n  min_tcb: {snp: 8}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(p.MaxAge) != 90*time.Second {
		t.Errorf("max_age = %s", time.Duration(p.MaxAge))
	}
	if got := p.SEVSNP.Measurement[0].String(); got != m48a {
		t.Errorf("measurement = %s", got)
	}
	if *p.SEVSNP.MinTCB != (TCBVersion{SNP: 8}) {
		t.Errorf("min_tcb = %+v", *p.SEVSNP.MinTCB)
	}
	if p.Debug || p.SEVSNP.VMPL != nil {
		t.Error("defaults changed")
	}
}

func hexb(s string) Hex {
	var h Hex
	if err := h.UnmarshalText([]byte(s)); err != nil {
		panic(err)
	}
	return h
}

func intp(i int) *int { return &i }

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rd := make(Hex, 64)
	rd[0] = 7
	snp := func(f func(c *Claims)) *Claims {
		c := &Claims{TEE: SEVSNP, Measurement: hexb(m48a), ReportData: rd, VMPL: intp(0), TCB: &TCBVersion{BootLoader: 3, SNP: 8, Microcode: 115}}
		if f != nil {
			f(c)
		}
		return c
	}
	policy := func(y string) *Policy {
		p, err := ParsePolicy([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	snpPolicy := policy("allow: [sevsnp]\nsevsnp:\n  measurement: [" + m48a + "]\n")
	tests := []struct {
		name     string
		p        *Policy
		c        *Claims
		opts     EvalOptions
		check    Check // "" = accepted
		wantWarn bool
	}{
		{"accept", snpPolicy, snp(nil), EvalOptions{}, "", false},
		{"nil policy", nil, snp(nil), EvalOptions{}, CheckNotAllowed, false},
		{"zero policy", &Policy{}, snp(nil), EvalOptions{}, CheckNotAllowed, false},
		{"nil claims", snpPolicy, nil, EvalOptions{}, CheckMalformed, false},
		{"not allowed", policy("allow: [tdx]\n"), snp(nil), EvalOptions{}, CheckNotAllowed, false},
		{"report data match padded", snpPolicy, snp(nil), EvalOptions{ReportData: []byte{7}}, "", false},
		{"report data mismatch", snpPolicy, snp(nil), EvalOptions{ReportData: []byte{8}}, CheckReportData, false},
		{"report data too long", snpPolicy, snp(nil), EvalOptions{ReportData: make([]byte, 65)}, CheckReportData, false},
		{"max_age ok", policy("allow: [sevsnp]\nmax_age: 1h\n"), snp(func(c *Claims) { c.Time = now.Add(-59 * time.Minute) }), EvalOptions{Now: now}, "", true},
		{"max_age expired", policy("allow: [sevsnp]\nmax_age: 1h\n"), snp(func(c *Claims) { c.Time = now.Add(-61 * time.Minute) }), EvalOptions{Now: now}, CheckExpired, false},
		{"no max_age, old evidence", policy("allow: [sevsnp]\n"), snp(func(c *Claims) { c.Time = now.Add(-1000 * time.Hour) }), EvalOptions{Now: now}, "", true},
		{"future time", snpPolicy, snp(func(c *Claims) { c.Time = now.Add(2 * time.Minute) }), EvalOptions{Now: now}, CheckExpired, false},
		{"future within skew", snpPolicy, snp(func(c *Claims) { c.Time = now.Add(30 * time.Second) }), EvalOptions{Now: now}, "", false},
		{"debug", snpPolicy, snp(func(c *Claims) { c.Debug = true }), EvalOptions{}, CheckDebug, false},
		{"debug allowed", policy("allow: [sevsnp]\ndebug: true\nsevsnp: {measurement: [" + m48a + "]}\n"), snp(func(c *Claims) { c.Debug = true }), EvalOptions{}, "", false},
		{"vmpl", snpPolicy, snp(func(c *Claims) { c.VMPL = intp(1) }), EvalOptions{}, CheckVMPL, false},
		{"vmpl missing", snpPolicy, snp(func(c *Claims) { c.VMPL = nil }), EvalOptions{}, CheckVMPL, false},
		{"vmpl 1 required", policy("allow: [sevsnp]\nsevsnp: {vmpl: 1, measurement: [" + m48a + "]}\n"), snp(func(c *Claims) { c.VMPL = intp(1) }), EvalOptions{}, "", false},
		{"tcb ok", policy("allow: [sevsnp]\nsevsnp: {min_tcb: {bootloader: 3, snp: 8}, measurement: [" + m48a + "]}\n"), snp(nil), EvalOptions{}, "", false},
		{"tcb low", policy("allow: [sevsnp]\nsevsnp: {min_tcb: {snp: 9}}\n"), snp(nil), EvalOptions{}, CheckTCB, false},
		{"tcb missing", policy("allow: [sevsnp]\nsevsnp: {min_tcb: {snp: 1}}\n"), snp(func(c *Claims) { c.TCB = nil }), EvalOptions{}, CheckTCB, false},
		{"measurement", snpPolicy, snp(func(c *Claims) { c.Measurement = hexb(m48b) }), EvalOptions{}, CheckMeasurement, false},
		{"empty measurement list warns", policy("allow: [sevsnp]\n"), snp(nil), EvalOptions{}, "", true},
		{"tdx tcb status", policy("allow: [tdx]\ntdx: {tcb_status: [UpToDate]}\n"), &Claims{TEE: TDX, TCBStatus: "OutOfDate"}, EvalOptions{}, CheckTCB, false},
		{"tdx tcb status unknown", policy("allow: [tdx]\ntdx: {tcb_status: [UpToDate]}\n"), &Claims{TEE: TDX}, EvalOptions{}, CheckTCB, false},
		{"tdx rtmr", policy("allow: [tdx]\ntdx: {rtmrs: {1: " + m48a + "}}\n"), &Claims{TEE: TDX, RTMRs: []Hex{hexb(m48a), hexb(m48b)}}, EvalOptions{}, CheckMeasurement, false},
		{"tdx rtmr ok", policy("allow: [tdx]\ntdx: {rtmrs: {1: " + m48b + "}, measurement: [" + m48a + "]}\n"), &Claims{TEE: TDX, Measurement: hexb(m48a), RTMRs: []Hex{hexb(m48a), hexb(m48b)}}, EvalOptions{}, "", false},
		{"nitro pcr", policy("allow: [nitro]\nnitro: {pcrs: {2: " + m48a + "}}\n"), &Claims{TEE: Nitro, PCRs: map[int]Hex{2: hexb(m48b)}}, EvalOptions{}, CheckMeasurement, false},
		{"nitro pcr missing", policy("allow: [nitro]\nnitro: {pcrs: {2: " + m48a + "}}\n"), &Claims{TEE: Nitro}, EvalOptions{}, CheckMeasurement, false},
		{"tpm pcr", policy("allow: [tpm]\ntpm: {pcrs: {7: abcd}}\n"), &Claims{TEE: TPM, PCRs: map[int]Hex{7: {0xab, 0xce}}}, EvalOptions{}, CheckMeasurement, false},
		{"sim measurement", policy("allow: [sim]\nsim: {measurement: [" + m48a + "]}\n"), &Claims{TEE: Sim, Measurement: hexb(m48b)}, EvalOptions{}, CheckMeasurement, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warnings []string
			opts := tt.opts
			opts.Warn = func(m string) { warnings = append(warnings, m) }
			err := tt.p.Evaluate(tt.c, &opts)
			if tt.check == "" {
				if err != nil {
					t.Fatalf("Evaluate: %v", err)
				}
			} else if got, _ := CheckOf(err); got != tt.check {
				t.Fatalf("Evaluate error = %v, want check %q", err, tt.check)
			} else if !strings.HasPrefix(err.Error(), string(tt.check)+": ") {
				t.Fatalf("error %q does not start with its check word", err)
			}
			if (len(warnings) > 0) != tt.wantWarn {
				t.Fatalf("warnings = %q, want some: %v", warnings, tt.wantWarn)
			}
			if tt.wantWarn && !strings.Contains(warnings[0], "any measurement is accepted") {
				t.Fatalf("warning = %q", warnings[0])
			}
		})
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("allow: [sevsnp]\nsevsnp:\n  measurement: [" + m48a + "]\n  vmpl: 0\n"))
	f.Add([]byte("allow: [tdx, nitro]\nmax_age: 5m\ntdx: {rtmrs: {0: " + m48a + "}}\n"))
	f.Add([]byte("tpm: {pcrs: {1: ab}}\n"))
	f.Add([]byte("allow: [sim]\nallow: [sim]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParsePolicy returned a policy that fails Validate: %v", err)
		}
		if p.MaxAge < 0 {
			t.Fatal("negative max_age accepted")
		}
		// Evaluate must not panic on any parsed policy.
		for _, tee := range KnownTEEs() {
			p.Evaluate(&Claims{TEE: tee, Measurement: make(Hex, 48), ReportData: make(Hex, 64)}, nil)
		}
	})
}
