package attest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"ok", `{"version":1,"tee":"sim","report":"eA=="}`, ""},
		{"with certs", `{"version":1,"tee":"sevsnp","report":"eA==","certs":["AQ==","Ag=="]}`, ""},
		{"version", `{"version":2,"tee":"sim","report":"eA=="}`, "version 2"},
		{"unknown tee", `{"version":1,"tee":"sgx","report":"eA=="}`, "unknown TEE"},
		{"empty report", `{"version":1,"tee":"sim","report":""}`, "empty report"},
		{"empty cert", `{"version":1,"tee":"sim","report":"eA==","certs":[""]}`, "certificate 0"},
		{"unknown field", `{"version":1,"tee":"sim","report":"eA==","x":1}`, "unknown"},
		{"duplicate field", `{"version":1,"tee":"sim","tee":"tdx","report":"eA=="}`, "duplicate"},
		{"trailing", `{"version":1,"tee":"sim","report":"eA=="}{}`, "invalid"},
		{"bad base64", `{"version":1,"tee":"sim","report":"!!"}`, "report"},
		{"too many certs", `{"version":1,"tee":"sim","report":"eA==","certs":[` + strings.Repeat(`"AQ==",`, MaxCerts) + `"AQ=="]}`, "certificates exceed"},
		{"too large", `{"version":1,"tee":"sim","report":"` + strings.Repeat("A", MaxEnvelopeSize) + `"}`, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseEnvelope([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseEnvelope: %v", err)
				}
				if string(e.Report) != "x" {
					t.Fatalf("report = %q", e.Report)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseEnvelope error = %v, want containing %q", err, tt.wantErr)
			}
			if c, _ := CheckOf(err); c != CheckMalformed {
				t.Fatalf("check = %q, want malformed", c)
			}
		})
	}
}

func tdxHeader(version uint16, teeType uint32) []byte {
	b := make([]byte, 632)
	binary.LittleEndian.PutUint16(b[0:2], version)
	binary.LittleEndian.PutUint32(b[4:8], teeType)
	return b
}

func TestDetectAndParseEvidence(t *testing.T) {
	snp := make([]byte, SNPReportSize)
	snp[0] = 3
	tests := []struct {
		name    string
		in      []byte
		hint    TEE
		want    TEE
		wantErr string
	}{
		{"snp by size", snp, "", SEVSNP, ""},
		{"tdx v4", tdxHeader(4, 0x81), "", TDX, ""},
		{"tdx v5", tdxHeader(5, 0x81), "", TDX, ""},
		{"sgx quote is not tdx", tdxHeader(4, 0), "", "", "cannot tell"},
		{"nitro tagged", []byte{0xd2, 0x84}, "", Nitro, ""},
		{"nitro untagged", []byte{0x84, 0x40}, "", Nitro, ""},
		{"tpm needs hint", []byte{0xff, 0x54, 0x43, 0x47}, "", "", "cannot tell"},
		{"tpm by hint", []byte{0xff, 0x54, 0x43, 0x47}, TPM, TPM, ""},
		{"hint overrides detection", snp, TPM, TPM, ""},
		{"envelope", []byte(` {"version":1,"tee":"nitro","report":"eA=="}`), "", Nitro, ""},
		{"envelope hint matches", []byte(`{"version":1,"tee":"nitro","report":"eA=="}`), Nitro, Nitro, ""},
		{"envelope hint mismatch", []byte(`{"version":1,"tee":"nitro","report":"eA=="}`), SEVSNP, "", "not sevsnp"},
		{"broken envelope", []byte(`{"version":1`), "", "", "evidence envelope"},
		{"empty", nil, "", "", "cannot tell"},
		{"empty with hint", nil, TPM, "", "empty report"},
		{"too large raw", make([]byte, MaxEvidenceSize+1), TPM, "", "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseEvidence(tt.in, tt.hint)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseEvidence error = %v, want containing %q", err, tt.wantErr)
				}
				if c, _ := CheckOf(err); c != CheckMalformed {
					t.Fatalf("check = %q", c)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseEvidence: %v", err)
			}
			if e.TEE != tt.want || e.Version != EnvelopeVersion {
				t.Fatalf("evidence = %s v%d, want %s", e.TEE, e.Version, tt.want)
			}
		})
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	in := &Evidence{Version: 1, TEE: SEVSNP, Report: []byte{1, 2, 3}, Certs: [][]byte{{4}, {5, 6}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.TEE != in.TEE || !bytes.Equal(out.Report, in.Report) || len(out.Certs) != 2 || !bytes.Equal(out.Certs[1], in.Certs[1]) {
		t.Fatalf("round trip: %+v", out)
	}
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"version":1,"tee":"sim","report":"eA=="}`))
	f.Add([]byte(`{"version":1,"tee":"sevsnp","report":"eA==","certs":["AQ=="]}`))
	f.Add([]byte(`{"version":1,"tee":"sim","report":"eA==","report":"eA=="}`))
	f.Add([]byte(`[[[[[[]]]]]]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEnvelope(b)
		if err != nil {
			if c, ok := CheckOf(err); !ok || c != CheckMalformed {
				t.Fatalf("error without malformed check: %v", err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted envelope fails Validate: %v", err)
		}
		// Re-encoding and parsing again gives the same evidence.
		b2, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := ParseEnvelope(b2)
		if err != nil || e2.TEE != e.TEE || !bytes.Equal(e2.Report, e.Report) || len(e2.Certs) != len(e.Certs) {
			t.Fatalf("round trip changed the evidence: %v", err)
		}
	})
}

func FuzzParseEvidence(f *testing.F) {
	f.Add(make([]byte, SNPReportSize), "")
	f.Add(tdxHeader(4, 0x81), "")
	f.Add([]byte{0xd2, 0x84, 0x40}, "nitro")
	f.Add([]byte(`{"version":1,"tee":"sim","report":"eA=="}`), "sim")
	f.Fuzz(func(t *testing.T, b []byte, hint string) {
		e, err := ParseEvidence(b, TEE(hint))
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("ParseEvidence returned invalid evidence: %v", err)
		}
		if hint != "" && e.TEE != TEE(hint) {
			t.Fatalf("hint %q ignored: %s", hint, e.TEE)
		}
	})
}
