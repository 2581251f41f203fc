// Package ratls binds TEE attestation evidence to TLS certificates (RA-TLS):
// it issues self-signed certificates whose extension carries evidence over
// the certificate's own public key, verifies such certificates on the client
// side in place of Web PKI validation, and serves and checks fresh evidence
// for a client-chosen nonce.
//
// The trust argument: the evidence's report data is
// attest.BindReportData(attest.TagRATLS, SubjectPublicKeyInfo DER), so a
// verifier that accepts the evidence under its policy knows that measured
// code in a TEE chose that key; the TLS handshake proves the peer holds the
// private key. A certificate copied by someone else is useless without the
// key, and evidence moved to another certificate binds the wrong key.
package ratls

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"

	"github.com/chatmcp/chatmcp/attest"
)

// OIDEvidence identifies the certificate extension carrying evidence.
//
// It is ChatMCP's own OID, 1.3.6.1.4.1.32473.4242.1.1, allocated under the
// IANA Private Enterprise Number 32473, which RFC 5612 reserves for
// documentation and examples. ChatMCP has no registered PEN yet; the OID is
// therefore meaningful only between ChatMCP components, and must move to a
// registered arc (and be announced as a breaking change) before other
// software is expected to parse it. Encoding/asn1 limits arcs to 31 bits,
// which rules out a UUID-based 2.25 OID.
var oidEvidence = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 4242, 1, 1}

// OIDEvidence returns a copy of the evidence extension's OID.
func OIDEvidence() asn1.ObjectIdentifier {
	return append(asn1.ObjectIdentifier(nil), oidEvidence...)
}

// MaxExtensionSize caps the extension value: a DER OCTET STRING around a
// JSON evidence envelope.
const MaxExtensionSize = attest.MaxEnvelopeSize + 16

// marshalExtension encodes the extension value: the DER OCTET STRING whose
// content is the JSON evidence envelope.
//
//	ChatMCPEvidence ::= OCTET STRING -- UTF-8 JSON evidence envelope (docs/attestation.md)
func marshalExtension(envelope []byte) ([]byte, error) {
	return asn1.Marshal(envelope)
}

// ParseExtension decodes an evidence extension value strictly: one DER
// OCTET STRING, no trailing bytes, containing a valid JSON envelope.
func ParseExtension(value []byte) (*attest.Evidence, error) {
	if len(value) > MaxExtensionSize {
		return nil, attest.Errorf(attest.CheckMalformed, "ratls: evidence extension of %d bytes exceeds %d", len(value), MaxExtensionSize)
	}
	var env []byte
	rest, err := asn1.Unmarshal(value, &env)
	if err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "ratls: evidence extension: %w", err)
	}
	if len(rest) != 0 {
		return nil, attest.Errorf(attest.CheckMalformed, "ratls: evidence extension has %d trailing bytes", len(rest))
	}
	return attest.ParseEnvelope(env)
}

// EvidenceFromCertificate returns the evidence carried by cert. Exactly one
// evidence extension must be present.
func EvidenceFromCertificate(cert *x509.Certificate) (*attest.Evidence, error) {
	var found []byte
	n := 0
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidEvidence) {
			found = e.Value
			n++
		}
	}
	switch n {
	case 0:
		return nil, attest.Errorf(attest.CheckMalformed, "ratls: certificate carries no evidence extension (%s)", oidEvidence)
	case 1:
		return ParseExtension(found)
	default:
		return nil, attest.Errorf(attest.CheckMalformed, "ratls: certificate carries %d evidence extensions", n)
	}
}

// ReportData returns the report data that binds evidence to a certificate's
// SubjectPublicKeyInfo (DER).
func ReportData(spki []byte) ([attest.ReportDataSize]byte, error) {
	rd, err := attest.BindReportData(attest.TagRATLS, spki)
	if err != nil {
		return rd, fmt.Errorf("ratls: %w", err)
	}
	return rd, nil
}
