// Package nitro verifies AWS Nitro Enclaves attestation documents (COSE_Sign1,
// ES384) against the AWS Nitro Enclaves root and turns them into attest.Claims;
// device access (/dev/nsm) lives apart in package nitro/device.
package nitro

import (
	"bytes"
	"fmt"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// DigestSHA384 is the only digest Nitro documents use; PCRs are its size.
const DigestSHA384 = "SHA384"

// pcrSize is the size of a SHA-384 PCR.
const pcrSize = 48

// Document is a decoded AWS Nitro Enclaves attestation document: the COSE
// payload. Parse fills it; nothing in it is trusted until Verify succeeds.
type Document struct {
	// ModuleID names the enclave (instance and enclave IDs).
	ModuleID string
	// Digest is the PCR hash algorithm, always "SHA384".
	Digest string
	// Timestamp is when the NSM produced the document (millisecond
	// precision).
	Timestamp time.Time
	// PCRs maps PCR index (0..31) to its value (48 bytes).
	PCRs map[int][]byte
	// Certificate is the DER leaf certificate whose key signed the document.
	Certificate []byte
	// CABundle holds DER certificates from the root (index 0) towards the
	// leaf's issuer (last).
	CABundle [][]byte
	// PublicKey, UserData and Nonce are the caller-supplied optional fields;
	// nil when absent or null.
	PublicKey []byte
	UserData  []byte
	Nonce     []byte
}

// Attestation is a parsed COSE_Sign1 attestation document.
type Attestation struct {
	// Document is the decoded payload.
	Document *Document
	msg      *cose.Sign1Message
}

// wireDocument mirrors the CBOR payload. Pointers tell absent from zero.
type wireDocument struct {
	ModuleID    *string           `cbor:"module_id"`
	Digest      *string           `cbor:"digest"`
	Timestamp   *uint64           `cbor:"timestamp"`
	PCRs        map[uint64][]byte `cbor:"pcrs"`
	Certificate []byte            `cbor:"certificate"`
	CABundle    [][]byte          `cbor:"cabundle"`
	PublicKey   []byte            `cbor:"public_key"`
	UserData    []byte            `cbor:"user_data"`
	Nonce       []byte            `cbor:"nonce"`
}

// payloadDecMode is the strict decoder for the payload. Real documents encode
// the payload as an indefinite-length map, so indefinite lengths are allowed;
// everything else is as strict as the library allows: duplicate keys,
// unknown fields, tags and case-insensitive field matches are errors, and
// nesting, array and map sizes are capped.
func payloadDecMode() (cbor.DecMode, error) {
	return cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthAllowed,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       MaxPCRs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
}

// Parse decodes a COSE_Sign1 attestation document, tagged (18) or untagged,
// and its payload. It checks structure, types and sizes only: the signature
// and certificates are checked by Verifier.Verify. Errors are *attest.Error
// with check "malformed".
func Parse(b []byte) (*Attestation, error) {
	if len(b) == 0 || len(b) > attest.MaxEvidenceSize {
		return nil, attest.Errorf(attest.CheckMalformed, "nitro document of %d bytes, want 1..%d", len(b), attest.MaxEvidenceSize)
	}
	var msg cose.Sign1Message
	var err error
	switch b[0] {
	case 0xd2: // tag 18, COSE_Sign1_Tagged
		err = msg.UnmarshalCBOR(b)
	case 0x84: // array of 4, untagged COSE_Sign1 as the NSM returns it
		err = (*cose.UntaggedSign1Message)(&msg).UnmarshalCBOR(b)
	default:
		return nil, attest.Errorf(attest.CheckMalformed, "nitro document: not a COSE_Sign1 (first byte %#02x)", b[0])
	}
	if err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "nitro document: COSE_Sign1: %w", err)
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "nitro document: protected header: %w", err)
	}
	if alg != cose.AlgorithmES384 {
		return nil, attest.Errorf(attest.CheckMalformed, "nitro document: algorithm %v, want ES384", alg)
	}
	if _, crit := msg.Headers.Protected[cose.HeaderLabelCritical]; crit {
		return nil, attest.Errorf(attest.CheckMalformed, "nitro document: unsupported critical headers")
	}
	if len(msg.Payload) == 0 {
		return nil, attest.Errorf(attest.CheckMalformed, "nitro document: empty payload")
	}
	doc, err := parsePayload(msg.Payload)
	if err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "nitro document: payload: %w", err)
	}
	return &Attestation{Document: doc, msg: &msg}, nil
}

func parsePayload(p []byte) (*Document, error) {
	dm, err := payloadDecMode()
	if err != nil {
		return nil, fmt.Errorf("decoder options: %w", err)
	}
	var w wireDocument
	// Unmarshal rejects trailing bytes after the map.
	if err := dm.Unmarshal(p, &w); err != nil {
		return nil, err
	}
	switch {
	case w.ModuleID == nil:
		return nil, fmt.Errorf("missing module_id")
	case len(*w.ModuleID) == 0 || len(*w.ModuleID) > MaxModuleIDLen:
		return nil, fmt.Errorf("module_id of %d bytes, want 1..%d", len(*w.ModuleID), MaxModuleIDLen)
	case w.Digest == nil:
		return nil, fmt.Errorf("missing digest")
	case *w.Digest != DigestSHA384:
		return nil, fmt.Errorf("digest %q, want %q", *w.Digest, DigestSHA384)
	case w.Timestamp == nil:
		return nil, fmt.Errorf("missing timestamp")
	case *w.Timestamp == 0 || *w.Timestamp > 1<<53:
		return nil, fmt.Errorf("timestamp %d out of range", *w.Timestamp)
	case len(w.PCRs) == 0:
		return nil, fmt.Errorf("missing pcrs")
	case len(w.PCRs) > MaxPCRs:
		return nil, fmt.Errorf("%d pcrs, at most %d", len(w.PCRs), MaxPCRs)
	case len(w.Certificate) == 0 || len(w.Certificate) > MaxCertLen:
		return nil, fmt.Errorf("certificate of %d bytes, want 1..%d", len(w.Certificate), MaxCertLen)
	case len(w.CABundle) == 0 || len(w.CABundle) > MaxCABundle:
		return nil, fmt.Errorf("cabundle of %d certificates, want 1..%d", len(w.CABundle), MaxCABundle)
	case len(w.PublicKey) > MaxPublicKeyLen:
		return nil, fmt.Errorf("public_key of %d bytes exceeds %d", len(w.PublicKey), MaxPublicKeyLen)
	case len(w.UserData) > MaxUserDataLen:
		return nil, fmt.Errorf("user_data of %d bytes exceeds %d", len(w.UserData), MaxUserDataLen)
	case len(w.Nonce) > MaxNonceLen:
		return nil, fmt.Errorf("nonce of %d bytes exceeds %d", len(w.Nonce), MaxNonceLen)
	}
	for i, c := range w.CABundle {
		if len(c) == 0 || len(c) > MaxCertLen {
			return nil, fmt.Errorf("cabundle[%d] of %d bytes, want 1..%d", i, len(c), MaxCertLen)
		}
	}
	pcrs := make(map[int][]byte, len(w.PCRs))
	for i, v := range w.PCRs {
		if i >= MaxPCRs {
			return nil, fmt.Errorf("pcr index %d not in 0..%d", i, MaxPCRs-1)
		}
		// The specification allows 32, 48 or 64 bytes; with digest SHA384,
		// only 48 is consistent.
		if len(v) != pcrSize {
			return nil, fmt.Errorf("pcr%d of %d bytes, want %d for SHA384", i, len(v), pcrSize)
		}
		pcrs[int(i)] = bytes.Clone(v)
	}
	for _, i := range []int{0, 1, 2} {
		if _, ok := pcrs[i]; !ok {
			return nil, fmt.Errorf("missing pcr%d", i)
		}
	}
	return &Document{
		ModuleID:    *w.ModuleID,
		Digest:      *w.Digest,
		Timestamp:   time.UnixMilli(int64(*w.Timestamp)).UTC(),
		PCRs:        pcrs,
		Certificate: w.Certificate,
		CABundle:    w.CABundle,
		PublicKey:   w.PublicKey,
		UserData:    w.UserData,
		Nonce:       w.Nonce,
	}, nil
}

// Debug reports whether the document comes from an enclave started in debug
// mode, which AWS signals by PCR0, PCR1 and PCR2 all being zero.
func (d *Document) Debug() bool {
	for _, i := range []int{0, 1, 2} {
		v, ok := d.PCRs[i]
		if !ok {
			return false
		}
		for _, b := range v {
			if b != 0 {
				return false
			}
		}
	}
	return true
}
