package sevsnp

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/google/go-sev-guest/kds"
)

func TestParseReport(t *testing.T) {
	f := newFakeChain(t, kds.TCBParts{}, chipID())
	good := f.report(t, nil)
	with := func(mut func(b []byte)) []byte {
		b := bytes.Clone(good)
		mut(b)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{name: "fake v3 report", in: good, ok: true},
		{name: "empty", in: nil},
		{name: "truncated", in: good[:ReportSize-1]},
		{name: "oversized", in: append(bytes.Clone(good), 0)},
		{name: "garbage", in: bytes.Repeat([]byte{0xff}, ReportSize)},
		{name: "version 1", in: with(func(b []byte) { binary.LittleEndian.PutUint32(b, 1) })},
		{name: "version 6", in: with(func(b []byte) { binary.LittleEndian.PutUint32(b, 6) })},
		{name: "policy reserved bit 17 clear", in: with(func(b []byte) { b[0x0A] &^= 0x02 })},
		{name: "policy must-be-zero bit 63", in: with(func(b []byte) { b[0x0F] |= 0x80 })},
		{name: "signature algorithm 2", in: with(func(b []byte) { b[0x34] = 2 })},
		{name: "reserved signing key 3", in: with(func(b []byte) { b[0x48] = 3 << 2 })},
		{name: "signer info must-be-zero", in: with(func(b []byte) { b[0x49] = 1 })},
		{name: "reserved 0x4C", in: with(func(b []byte) { b[0x4C] = 1 })},
		{name: "reserved 0x1A0 before CHIP_ID", in: with(func(b []byte) { b[0x19F] = 1 })},
		{name: "reserved 0x208", in: with(func(b []byte) { b[0x208] = 1 })},
		{name: "reserved after the signature", in: with(func(b []byte) { b[0x2A0+144] = 1 })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseReport(tc.in)
			if tc.ok {
				if err != nil {
					t.Fatalf("ParseReport: %v", err)
				}
				if !bytes.Equal(r.Raw, tc.in) {
					t.Fatal("Raw differs from the input")
				}
				return
			}
			wantCheck(t, err, attest.CheckMalformed)
		})
	}
}

func TestParseRealVector(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(vectorsDir(t), "sev_snp_report.bin"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseReport(b)
	if err != nil {
		t.Fatalf("ParseReport: %v", err)
	}
	if v := r.Proto.GetVersion(); v != 3 {
		t.Errorf("version %d, want 3", v)
	}
	if p := r.Proto.GetPolicy(); p != 0x30000 {
		t.Errorf("policy %#x, want 0x30000", p)
	}
}

// FuzzParse checks ParseReport never panics and either rejects with
// malformed or returns a report that round-trips byte for byte.
func FuzzParse(f *testing.F) {
	fc := newFakeChain(f, kds.TCBParts{}, chipID())
	f.Add(fc.report(f, nil))
	f.Add(bytes.Repeat([]byte{0}, ReportSize))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReport(b)
		if err != nil {
			if c, ok := attest.CheckOf(err); !ok || c != attest.CheckMalformed {
				t.Fatalf("error %v is not malformed", err)
			}
			return
		}
		if !bytes.Equal(r.Raw, b) {
			t.Fatal("Raw differs from the input")
		}
	})
}

// FuzzVerify runs mutated fake reports through the whole verifier with the
// fake chain: it must never panic, and everything that verifies must be
// exactly what the fake chain signed (a mutation of the signed bytes that
// still verifies would be a forgery; fuzz workers sign their own seeds, so
// only the signed bytes are compared, not the signatures).
func FuzzVerify(f *testing.F) {
	fc := newFakeChain(f, kds.TCBParts{}, chipID())
	good := fc.report(f, nil)
	v := fc.verifier()
	f.Add(good, uint16(0x90), byte(1))
	f.Add(good, uint16(0x2A0), byte(0x80))
	f.Add(good, uint16(0), byte(0))
	f.Fuzz(func(t *testing.T, base []byte, off uint16, x byte) {
		b := bytes.Clone(base)
		if len(b) > 0 {
			b[int(off)%len(b)] ^= x
		}
		_, err := v.Verify(context.Background(), fc.evidence(b), &attest.VerifyOptions{Now: fakeNow})
		if err == nil {
			if len(b) != ReportSize || !bytes.Equal(b[:signedSize], good[:signedSize]) {
				t.Fatalf("a report differing from the signed one verified")
			}
			return
		}
		if _, ok := attest.CheckOf(err); !ok {
			t.Fatalf("error %v is not an *attest.Error", err)
		}
	})
}
