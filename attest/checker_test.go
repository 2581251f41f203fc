package attest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeVerifier is a stand-in for a TEE verifier that records whether it ran.
// The real verifiers are tested in their packages; here only the Checker's
// ordering and error mapping are under test.
type fakeVerifier struct {
	tee    TEE
	claims *Claims
	err    error
	called bool
	now    time.Time
}

func (f *fakeVerifier) TEE() TEE { return f.tee }
func (f *fakeVerifier) Verify(_ context.Context, _ *Evidence, o *VerifyOptions) (*Claims, error) {
	f.called = true
	f.now = o.Now
	return f.claims, f.err
}

func TestChecker(t *testing.T) {
	ev := &Evidence{Version: 1, TEE: Sim, Report: []byte("x")}
	m := make(Hex, 48)
	good := &Claims{TEE: Sim, Measurement: m, ReportData: make(Hex, 64)}
	allow := &Policy{Allow: []TEE{Sim}}
	tests := []struct {
		name       string
		v          *fakeVerifier
		ev         *Evidence
		p          *Policy
		check      Check
		wantCalled bool
		wantErrIs  error
	}{
		{"accept", &fakeVerifier{tee: Sim, claims: good}, ev, allow, "", true, nil},
		{"not allowed before parsing", &fakeVerifier{tee: Sim, claims: good}, ev, &Policy{Allow: []TEE{TDX}}, CheckNotAllowed, false, nil},
		{"nil policy", &fakeVerifier{tee: Sim, claims: good}, ev, nil, CheckNotAllowed, false, nil},
		{"no verifier configured", &fakeVerifier{tee: TDX}, ev, allow, CheckNotAllowed, false, nil},
		{"nil evidence", &fakeVerifier{tee: Sim}, nil, allow, CheckMalformed, false, nil},
		{"invalid envelope", &fakeVerifier{tee: Sim}, &Evidence{Version: 2, TEE: Sim, Report: []byte("x")}, allow, CheckMalformed, false, nil},
		{"plain verifier error wrapped", &fakeVerifier{tee: Sim, err: errBoom}, ev, allow, CheckMalformed, true, errBoom},
		{"attest error kept", &fakeVerifier{tee: Sim, err: Errorf(CheckSignature, "bad: %w", errBoom)}, ev, allow, CheckSignature, true, errBoom},
		{"nil claims", &fakeVerifier{tee: Sim}, ev, allow, CheckMalformed, true, nil},
		{"claims of another TEE", &fakeVerifier{tee: Sim, claims: &Claims{TEE: TDX}}, ev, allow, CheckMalformed, true, nil},
		{"policy evaluated", &fakeVerifier{tee: Sim, claims: &Claims{TEE: Sim, Debug: true}}, ev, allow, CheckDebug, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChecker(tt.v)
			at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			claims, err := c.Check(context.Background(), tt.ev, tt.p, &CheckOptions{Now: at})
			if tt.v.called != tt.wantCalled {
				t.Fatalf("verifier called = %v, want %v", tt.v.called, tt.wantCalled)
			}
			if tt.wantCalled && !tt.v.now.Equal(at) {
				t.Fatalf("verifier saw time %s, want %s", tt.v.now, at)
			}
			if tt.check == "" {
				if err != nil || claims != good {
					t.Fatalf("Check = %v, %v", claims, err)
				}
				return
			}
			if claims != nil {
				t.Fatal("claims returned with an error")
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Check != tt.check {
				t.Fatalf("Check error = %v, want *Error with check %q", err, tt.check)
			}
			if tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs) {
				t.Fatalf("Check error %v does not wrap %v", err, tt.wantErrIs)
			}
		})
	}
}

var errBoom = errors.New("boom")

func TestNewCheckerDuplicatePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "two verifiers for sim") {
			t.Fatalf("recover = %v", r)
		}
	}()
	NewChecker(&fakeVerifier{tee: Sim}, &fakeVerifier{tee: Sim})
}

func TestErrorf(t *testing.T) {
	err := Errorf(CheckTCB, "reading %s: %w", "x", errBoom)
	if err.Error() != "tcb: reading x: boom" || !errors.Is(err, errBoom) {
		t.Fatalf("Errorf = %q", err)
	}
	if c, ok := CheckOf(err); !ok || c != CheckTCB {
		t.Fatalf("CheckOf = %q, %v", c, ok)
	}
	if _, ok := CheckOf(errBoom); ok {
		t.Fatal("CheckOf found a check in a plain error")
	}
	for _, c := range []Check{CheckMalformed, CheckSignature, CheckCertificate, CheckExpired} {
		if !c.Invalid() {
			t.Errorf("%s not Invalid", c)
		}
	}
	for _, c := range []Check{CheckReportData, CheckMeasurement, CheckDebug, CheckVMPL, CheckTCB, CheckNotAllowed} {
		if c.Invalid() {
			t.Errorf("%s Invalid", c)
		}
	}
}

func TestVerifyOptionsTime(t *testing.T) {
	pinned := time.Date(2025, 12, 25, 13, 15, 37, 0, time.UTC)
	clock := func() time.Time { return pinned.Add(time.Hour) }
	tests := []struct {
		name  string
		opts  *VerifyOptions
		clock func() time.Time
		want  time.Time
	}{
		{"pinned time wins", &VerifyOptions{Now: pinned}, clock, pinned},
		{"nil options use the clock", nil, clock, pinned.Add(time.Hour)},
		{"zero time uses the clock", &VerifyOptions{}, clock, pinned.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.opts.Time(tt.clock); !got.Equal(tt.want) {
				t.Fatalf("Time = %v, want %v", got, tt.want)
			}
		})
	}
	if got := (*VerifyOptions)(nil).Time(nil); time.Since(got) > time.Minute || time.Since(got) < 0 {
		t.Fatalf("Time(nil) = %v, want about now", got)
	}
}
