package attest

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/chatmcp/chatmcp/internal/wire"
)

// EnvelopeVersion is the version of the JSON evidence envelope.
const EnvelopeVersion = 1

// Evidence is the envelope ChatMCP moves evidence in. Report holds the TEE's
// own bytes unchanged (an SEV-SNP report, a TDX quote, a Nitro COSE_Sign1
// document, a TPM attestation, a simulator statement); Certs holds DER
// certificates the verifier may need beside them (SEV-SNP VCEK and ASK).
// In JSON, byte strings are standard base64.
type Evidence struct {
	Version int      `json:"version"`
	TEE     TEE      `json:"tee"`
	Report  []byte   `json:"report"`
	Certs   [][]byte `json:"certs,omitempty"`
}

// Validate checks the envelope's shape and sizes, not its contents.
func (e *Evidence) Validate() error {
	switch {
	case e.Version != EnvelopeVersion:
		return Errorf(CheckMalformed, "evidence envelope version %d, want %d", e.Version, EnvelopeVersion)
	case !e.TEE.Valid():
		return Errorf(CheckMalformed, "unknown TEE type %q", e.TEE)
	case len(e.Report) == 0:
		return Errorf(CheckMalformed, "evidence has an empty report")
	case len(e.Report) > MaxEvidenceSize:
		return Errorf(CheckMalformed, "report of %d bytes exceeds the %d-byte limit", len(e.Report), MaxEvidenceSize)
	case len(e.Certs) > MaxCerts:
		return Errorf(CheckMalformed, "%d certificates exceed the limit of %d", len(e.Certs), MaxCerts)
	}
	for i, c := range e.Certs {
		if len(c) == 0 || len(c) > MaxCertSize {
			return Errorf(CheckMalformed, "certificate %d has %d bytes, want 1..%d", i, len(c), MaxCertSize)
		}
	}
	return nil
}

// ParseEnvelope decodes a JSON evidence envelope strictly and validates it.
func ParseEnvelope(b []byte) (*Evidence, error) {
	if len(b) > MaxEnvelopeSize {
		return nil, Errorf(CheckMalformed, "evidence envelope of %d bytes exceeds the %d-byte limit", len(b), MaxEnvelopeSize)
	}
	var e Evidence
	if err := wire.Decode(b, &e); err != nil {
		return nil, Errorf(CheckMalformed, "evidence envelope: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// SNPReportSize is the size of an SEV-SNP ATTESTATION_REPORT.
const SNPReportSize = 1184

// ParseEvidence accepts either a JSON envelope or a raw vendor file. For a
// raw file the TEE is hint when set, and otherwise recognised from the bytes:
// 1184 bytes is an SEV-SNP report, a v4/v5 quote header with TEE type 0x81 is
// TDX, and a CBOR COSE_Sign1 (tag 18 or a 4-element array) is Nitro. A TPM
// attestation must be named by hint.
func ParseEvidence(b []byte, hint TEE) (*Evidence, error) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		e, err := ParseEnvelope(b)
		if err != nil {
			return nil, err
		}
		if hint != "" && e.TEE != hint {
			return nil, Errorf(CheckMalformed, "envelope holds %s evidence, not %s", e.TEE, hint)
		}
		return e, nil
	}
	tee := hint
	if tee == "" {
		tee = Detect(b)
		if tee == "" {
			return nil, Errorf(CheckMalformed, "cannot tell the TEE type of %d bytes of raw evidence; name it with --tee", len(b))
		}
	}
	e := &Evidence{Version: EnvelopeVersion, TEE: tee, Report: b}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// Detect guesses the TEE type of raw vendor evidence, returning "" when it
// cannot. A guess is only routing: the verifier still parses strictly.
func Detect(b []byte) TEE {
	switch {
	case len(b) == SNPReportSize:
		return SEVSNP
	case len(b) >= 48 && (binary.LittleEndian.Uint16(b[0:2]) == 4 || binary.LittleEndian.Uint16(b[0:2]) == 5) &&
		binary.LittleEndian.Uint32(b[4:8]) == 0x81:
		return TDX
	case len(b) > 0 && (b[0] == 0xd2 || b[0] == 0x84):
		return Nitro
	}
	return ""
}

// String summarises the envelope for logs.
func (e *Evidence) String() string {
	return fmt.Sprintf("%s evidence (%d bytes, %d certs)", e.TEE, len(e.Report), len(e.Certs))
}
