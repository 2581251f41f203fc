package sim

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/internal/wire"
)

// report is the simulator's evidence, the bytes carried in
// attest.Evidence.Report:
//
//	{"statement": <base64 of the statement JSON>, "signature": <base64 Ed25519 signature>}
//
// The signature covers signingContext || statement bytes exactly as sent, so
// no canonical JSON is needed.
type report struct {
	Statement []byte `json:"statement"`
	Signature []byte `json:"signature"`
}

// statement is what the simulator asserts.
type statement struct {
	Format      string `json:"format"`
	Insecure    bool   `json:"insecure"`
	Time        string `json:"time"`
	Measurement string `json:"measurement"`
	ReportData  string `json:"report_data"`
}

// Statement is a parsed simulator statement. Its signature has not
// necessarily been checked: Parse only parses.
type Statement struct {
	Time        time.Time
	Measurement [MeasurementSize]byte
	ReportData  [attest.ReportDataSize]byte

	raw       []byte
	signature []byte
}

// Parse decodes simulator evidence strictly: unknown or duplicate fields,
// trailing data, a wrong format, a missing insecure marker, wrongly sized
// hex fields and out-of-range times are errors (CheckMalformed). It does
// not check the signature.
func Parse(b []byte) (*Statement, error) {
	if len(b) > MaxStatementSize {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: report of %d bytes exceeds %d", len(b), MaxStatementSize)
	}
	var r report
	if err := wire.Decode(b, &r); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: report: %w", err)
	}
	if len(r.Signature) != 64 {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: signature has %d bytes, want 64", len(r.Signature))
	}
	var st statement
	if err := wire.Decode(r.Statement, &st); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: statement: %w", err)
	}
	if st.Format != Format {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: format %q, want %q", st.Format, Format)
	}
	if !st.Insecure {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: statement lacks the insecure marker")
	}
	s := &Statement{raw: r.Statement, signature: r.Signature}
	t, err := time.Parse(time.RFC3339Nano, st.Time)
	if err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: time: %w", err)
	}
	if t.Before(minTime) || t.After(maxTime) {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: time %s out of range", st.Time)
	}
	s.Time = t.UTC()
	if err := decodeFixed(s.Measurement[:], st.Measurement); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: measurement: %w", err)
	}
	if err := decodeFixed(s.ReportData[:], st.ReportData); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: report_data: %w", err)
	}
	return s, nil
}

// decodeFixed decodes lowercase hex of exactly len(dst) bytes.
func decodeFixed(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("%d hex digits, want %d", len(s), 2*len(dst))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return err
	}
	if hex.EncodeToString(dst) != s {
		return fmt.Errorf("hex is not lowercase")
	}
	return nil
}

// marshal encodes and signs a statement.
func marshal(t time.Time, m [MeasurementSize]byte, rd [attest.ReportDataSize]byte) ([]byte, error) {
	st, err := json.Marshal(statement{
		Format:      Format,
		Insecure:    true,
		Time:        t.UTC().Format(time.RFC3339Nano),
		Measurement: hex.EncodeToString(m[:]),
		ReportData:  hex.EncodeToString(rd[:]),
	})
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(privateKey(), signedBytes(st))
	return json.Marshal(report{Statement: st, Signature: sig})
}
