package sim

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func fixedMeasurement() []byte { return bytes.Repeat([]byte{0xab}, MeasurementSize) }

func newAttester(t testing.TB, now time.Time) *Attester {
	t.Helper()
	a, err := NewAttester(&Options{Measurement: fixedMeasurement(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustPolicy(t testing.TB, y string) *attest.Policy {
	t.Helper()
	p, err := attest.ParsePolicy([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func rd(b byte) [attest.ReportDataSize]byte {
	var r [attest.ReportDataSize]byte
	for i := range r {
		r[i] = b
	}
	return r
}

// resign rewrites the statement with f and signs it again with the
// well-known key, as any forger can.
func resign(t *testing.T, ev *attest.Evidence, f func(m map[string]any)) *attest.Evidence {
	t.Helper()
	var r report
	if err := json.Unmarshal(ev.Report, &r); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Statement, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	st, _ := json.Marshal(m)
	r.Statement = st
	r.Signature = sign(st)
	b, _ := json.Marshal(r)
	return &attest.Evidence{Version: 1, TEE: attest.Sim, Report: b}
}

func sign(st []byte) []byte {
	return edSign(signedBytes(st))
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	a := newAttester(t, t0)
	good, err := a.Attest(ctx, rd(1))
	if err != nil {
		t.Fatal(err)
	}
	allowSim := mustPolicy(t, "allow: [sim]\nmax_age: 10m\n")
	pinned := mustPolicy(t, "allow: [sim]\nsim:\n  measurement: ["+hex.EncodeToString(fixedMeasurement())+"]\n")
	otherM := mustPolicy(t, "allow: [sim]\nsim:\n  measurement: ["+strings.Repeat("cd", 48)+"]\n")
	defaultPolicy := mustPolicy(t, "allow: [sevsnp, tdx, nitro, tpm]\n")
	tampered := *good
	tampered.Report = bytes.Replace(good.Report, []byte(`"statement":"`), []byte(`"statement":"A`), 1)
	tampered.Report = append([]byte(nil), tampered.Report...)
	flipSig := func() *attest.Evidence {
		var r report
		json.Unmarshal(good.Report, &r)
		r.Signature[0] ^= 1
		b, _ := json.Marshal(r)
		return &attest.Evidence{Version: 1, TEE: attest.Sim, Report: b}
	}
	changedRD := func() *attest.Evidence {
		var r report
		json.Unmarshal(good.Report, &r)
		r.Statement = bytes.Replace(r.Statement, []byte(strings.Repeat("01", 64)), []byte(strings.Repeat("02", 64)), 1)
		b, _ := json.Marshal(r)
		return &attest.Evidence{Version: 1, TEE: attest.Sim, Report: b}
	}
	wantRD := rd(1)
	otherRD := rd(2)

	tests := []struct {
		name  string
		ev    *attest.Evidence
		p     *attest.Policy
		now   time.Time
		rd    []byte
		check attest.Check // "" = accepted
	}{
		{"accept", good, allowSim, t0.Add(time.Minute), wantRD[:], ""},
		{"accept pinned measurement", good, pinned, t0, wantRD[:], ""},
		{"accept short expected report data zero-padded", mustAttest(t, a, [64]byte{7}), allowSim, t0, []byte{7}, ""},
		{"not allowed by default policy", good, defaultPolicy, t0, nil, attest.CheckNotAllowed},
		{"nil policy", good, nil, t0, nil, attest.CheckNotAllowed},
		{"tampered signature", flipSig(), allowSim, t0, nil, attest.CheckSignature},
		{"tampered statement", changedRD(), allowSim, t0, nil, attest.CheckSignature},
		{"tampered base64", &tampered, allowSim, t0, nil, attest.CheckMalformed},
		{"wrong report data", good, allowSim, t0, otherRD[:], attest.CheckReportData},
		{"old with max_age", good, allowSim, t0.Add(11 * time.Minute), nil, attest.CheckExpired},
		{"future", good, allowSim, t0.Add(-2 * time.Minute), nil, attest.CheckExpired},
		{"measurement not listed", good, otherM, t0, nil, attest.CheckMeasurement},
		{"forged without insecure marker", resign(t, good, func(m map[string]any) { m["insecure"] = false }), allowSim, t0, nil, attest.CheckMalformed},
		{"forged wrong format", resign(t, good, func(m map[string]any) { m["format"] = "x" }), allowSim, t0, nil, attest.CheckMalformed},
		{"forged extra field", resign(t, good, func(m map[string]any) { m["debug"] = true }), allowSim, t0, nil, attest.CheckMalformed},
		{"forged short measurement", resign(t, good, func(m map[string]any) { m["measurement"] = "abcd" }), allowSim, t0, nil, attest.CheckMalformed},
		{"forged uppercase hex", resign(t, good, func(m map[string]any) { m["measurement"] = strings.Repeat("AB", 48) }), allowSim, t0, nil, attest.CheckMalformed},
		{"forged bad time", resign(t, good, func(m map[string]any) { m["time"] = "yesterday" }), allowSim, t0, nil, attest.CheckMalformed},
		{"forged ancient time", resign(t, good, func(m map[string]any) { m["time"] = "1900-01-01T00:00:00Z" }), allowSim, t0, nil, attest.CheckMalformed},
		{"certs attached", &attest.Evidence{Version: 1, TEE: attest.Sim, Report: good.Report, Certs: [][]byte{{1}}}, allowSim, t0, nil, attest.CheckMalformed},
	}
	c := attest.NewChecker(NewVerifier())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := c.Check(ctx, tt.ev, tt.p, &attest.CheckOptions{Now: tt.now, ReportData: tt.rd})
			if tt.check == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if !claims.Insecure || claims.TEE != attest.Sim || !claims.Time.Equal(t0) || !bytes.Equal(claims.Measurement, fixedMeasurement()) {
					t.Fatalf("claims = %+v", claims)
				}
				return
			}
			got, ok := attest.CheckOf(err)
			if !ok || got != tt.check {
				t.Fatalf("Check error = %v, want check %q", err, tt.check)
			}
			var ae *attest.Error
			if !errors.As(err, &ae) || !strings.HasPrefix(err.Error(), string(tt.check)+": ") {
				t.Fatalf("error %q does not start with its check word", err)
			}
		})
	}
}

func mustAttest(t *testing.T, a *Attester, r [64]byte) *attest.Evidence {
	t.Helper()
	ev, err := a.Attest(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestMeasurementSources(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "prog")
	if err := os.WriteFile(exe, []byte("program bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	envM := strings.Repeat("5a", 48)
	noEnv := func(string) string { return "" }
	tests := []struct {
		name    string
		opts    *Options
		want    string
		wantErr bool
	}{
		{"executable hash", &Options{Getenv: noEnv, Executable: func() (string, error) { return exe, nil }},
			"", false},
		{"env overrides", &Options{Getenv: func(k string) string {
			if k == MeasurementEnv {
				return envM
			}
			return ""
		}, Executable: func() (string, error) { return exe, nil }}, envM, false},
		{"env bad hex", &Options{Getenv: func(string) string { return "zz" }}, "", true},
		{"env wrong length", &Options{Getenv: func(string) string { return "abcd" }}, "", true},
		{"option wrong length", &Options{Measurement: []byte{1}}, "", true},
		{"missing executable", &Options{Getenv: noEnv, Executable: func() (string, error) { return filepath.Join(dir, "nope"), nil }}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAttester(tt.opts)
			if tt.wantErr {
				if err == nil {
					t.Fatal("NewAttester succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				sum := sha384([]byte("program bytes"))
				want = hex.EncodeToString(sum[:])
			}
			if got := hex.EncodeToString(a.Measurement()); got != want {
				t.Fatalf("measurement = %s, want %s", got, want)
			}
		})
	}
}

func TestParseRejectsOversize(t *testing.T) {
	if _, err := Parse(make([]byte, MaxStatementSize+1)); err == nil {
		t.Fatal("Parse accepted oversize input")
	}
}

func FuzzParse(f *testing.F) {
	a := newAttester(f, t0)
	ev, err := a.Attest(context.Background(), rd(3))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ev.Report)
	f.Add([]byte(`{"statement":"","signature":""}`))
	f.Add([]byte(`{}`))
	v := NewVerifier()
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if _, ok := attest.CheckOf(err); !ok {
				t.Fatalf("Parse error without a check: %v", err)
			}
			return
		}
		if s.Time.Before(minTime) || s.Time.After(maxTime) {
			t.Fatalf("Parse returned time %s out of range", s.Time)
		}
		claims, err := v.Verify(context.Background(), &attest.Evidence{Version: 1, TEE: attest.Sim, Report: b}, nil)
		if err == nil && !claims.Insecure {
			t.Fatal("verified sim claims not marked insecure")
		}
	})
}

func BenchmarkSimVerify(b *testing.B) {
	a := newAttester(b, t0)
	ev, err := a.Attest(context.Background(), rd(1))
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, ev, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Verify is the baseline for BenchmarkSimVerify: one bare
// Ed25519 verification of a statement-sized message.
func BenchmarkEd25519Verify(b *testing.B) {
	msg := bytes.Repeat([]byte{'x'}, 300)
	sig := edSign(msg)
	pub := PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		if !edVerify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

func edSign(msg []byte) []byte { return ed25519.Sign(privateKey(), msg) }

func edVerify(pub ed25519.PublicKey, msg, sig []byte) bool { return ed25519.Verify(pub, msg, sig) }

func sha384(b []byte) [48]byte { return sha512.Sum384(b) }
