// Package tpm verifies TPM 2.0 quotes signed by an attestation key (AK) the
// caller trusts, either listed directly or certified by a trusted CA, and
// turns them into attest.Claims; device access (/dev/tpmrm0) lives apart in
// package tpm/device.
package tpm

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-tpm/tpm2"
)

// FormatVersion is the version of the TPM evidence format.
const FormatVersion = 1

// Attestation is ChatMCP's TPM evidence: everything a verifier needs to
// check one quote, carried as attest.Evidence.Report. Its wire form is a
// CBOR map with definite lengths and text keys (documented in
// docs/attestation.md):
//
//	{ "version":   1,
//	  "ak_public": bstr,          ; TPMT_PUBLIC of the AK, TPM wire format
//	  "ak_certs":  [* bstr],      ; optional DER chain, AK certificate first
//	  "quote":     bstr,          ; TPMS_ATTEST exactly as TPM2_Quote returned it
//	  "signature": bstr,          ; TPMT_SIGNATURE over quote
//	  "pcrs":      {* uint => bstr} } ; the selected PCR values of the quoted bank
type Attestation struct {
	Version   int            `cbor:"version"`
	AKPublic  []byte         `cbor:"ak_public"`
	AKCerts   [][]byte       `cbor:"ak_certs,omitempty"`
	Quote     []byte         `cbor:"quote"`
	Signature []byte         `cbor:"signature"`
	PCRs      map[int][]byte `cbor:"pcrs"`
}

// Parsed is an Attestation with its TPM structures decoded and checked for
// consistency. Nothing in it is trusted until Verifier.Verify succeeds.
type Parsed struct {
	Raw       *Attestation
	AK        *tpm2.TPMTPublic
	AKKey     crypto.PublicKey
	Attest    *tpm2.TPMSAttest
	QuoteInfo *tpm2.TPMSQuoteInfo
	Signature *tpm2.TPMTSignature
	// Bank is the hash algorithm of the quoted PCR bank.
	Bank tpm2.TPMIAlgHash
}

// Marshal encodes a in the canonical CBOR form Parse accepts.
func (a *Attestation) Marshal() ([]byte, error) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		return nil, err
	}
	return em.Marshal(a)
}

func decMode() (cbor.DecMode, error) {
	return cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       NumPCRs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}.DecMode()
}

// Parse decodes TPM evidence and its TPM structures. It checks structure,
// sizes and internal consistency (the PCR values supplied are exactly the
// quoted selection), not signatures or trust. Errors are *attest.Error with
// check "malformed".
func Parse(b []byte) (*Parsed, error) {
	if len(b) == 0 || len(b) > attest.MaxEvidenceSize {
		return nil, attest.Errorf(attest.CheckMalformed, "tpm evidence of %d bytes, want 1..%d", len(b), attest.MaxEvidenceSize)
	}
	dm, err := decMode()
	if err != nil {
		return nil, fmt.Errorf("tpm evidence decoder: %w", err)
	}
	var a Attestation
	if err := dm.Unmarshal(b, &a); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "tpm evidence: %w", err)
	}
	if err := a.checkSizes(); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "tpm evidence: %w", err)
	}
	p := &Parsed{Raw: &a}
	if p.AK, err = unmarshalExact[tpm2.TPMTPublic](a.AKPublic); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "tpm evidence: ak_public: %w", err)
	}
	if p.AKKey, err = publicKey(p.AK); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "tpm evidence: ak_public: %w", err)
	}
	if p.Attest, p.QuoteInfo, err = ParseQuote(a.Quote); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "tpm evidence: quote: %w", err)
	}
	if p.Signature, err = unmarshalExact[tpm2.TPMTSignature](a.Signature); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "tpm evidence: signature: %w", err)
	}
	if p.Bank, err = checkSelection(p.QuoteInfo, a.PCRs); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "tpm evidence: %w", err)
	}
	return p, nil
}

func (a *Attestation) checkSizes() error {
	switch {
	case a.Version != FormatVersion:
		return fmt.Errorf("version %d, want %d", a.Version, FormatVersion)
	case len(a.AKPublic) == 0 || len(a.AKPublic) > MaxAKPublicLen:
		return fmt.Errorf("ak_public of %d bytes, want 1..%d", len(a.AKPublic), MaxAKPublicLen)
	case len(a.Quote) == 0 || len(a.Quote) > MaxQuoteLen:
		return fmt.Errorf("quote of %d bytes, want 1..%d", len(a.Quote), MaxQuoteLen)
	case len(a.Signature) == 0 || len(a.Signature) > MaxSignatureLen:
		return fmt.Errorf("signature of %d bytes, want 1..%d", len(a.Signature), MaxSignatureLen)
	case len(a.AKCerts) > MaxAKCerts:
		return fmt.Errorf("%d AK certificates, at most %d", len(a.AKCerts), MaxAKCerts)
	case len(a.PCRs) == 0:
		return fmt.Errorf("no pcrs")
	}
	for i, c := range a.AKCerts {
		if len(c) == 0 || len(c) > MaxAKCertLen {
			return fmt.Errorf("ak_certs[%d] of %d bytes, want 1..%d", i, len(c), MaxAKCertLen)
		}
	}
	return nil
}

// unmarshalExact decodes a TPM structure and requires that re-encoding it
// gives back exactly b: no trailing bytes, no non-canonical forms.
func unmarshalExact[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](b []byte) (t *T, err error) {
	// go-tpm's reflection decoder is not documented as panic-free on
	// arbitrary input; a panic on untrusted bytes is a rejection.
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("undecodable TPM structure: %v", r)
		}
	}()
	t, err = tpm2.Unmarshal[T, P](b)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tpm2.Marshal(*t), b) {
		return nil, fmt.Errorf("%d bytes do not re-encode to themselves (trailing or non-canonical data)", len(b))
	}
	return t, nil
}

// ParseQuote decodes a TPMS_ATTEST and requires it to be a TPM-generated
// quote (magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_QUOTE). It says
// nothing about who signed it.
func ParseQuote(b []byte) (*tpm2.TPMSAttest, *tpm2.TPMSQuoteInfo, error) {
	a, err := unmarshalExact[tpm2.TPMSAttest](b)
	if err != nil {
		return nil, nil, err
	}
	if a.Magic != tpm2.TPMGeneratedValue {
		return nil, nil, fmt.Errorf("magic %#x, want TPM_GENERATED_VALUE", uint32(a.Magic))
	}
	if a.Type != tpm2.TPMSTAttestQuote {
		return nil, nil, fmt.Errorf("attestation type %#x, want TPM_ST_ATTEST_QUOTE", uint16(a.Type))
	}
	q, err := a.Attested.Quote()
	if err != nil {
		return nil, nil, err
	}
	if len(a.ExtraData.Buffer) > MaxExtraDataLen {
		return nil, nil, fmt.Errorf("extraData of %d bytes exceeds %d", len(a.ExtraData.Buffer), MaxExtraDataLen)
	}
	return a, q, nil
}

// bankSize returns the digest size of a PCR bank hash algorithm.
func bankSize(alg tpm2.TPMIAlgHash) (int, bool) {
	switch alg {
	case tpm2.TPMAlgSHA1:
		return 20, true
	case tpm2.TPMAlgSHA256:
		return 32, true
	case tpm2.TPMAlgSHA384:
		return 48, true
	case tpm2.TPMAlgSHA512:
		return 64, true
	}
	return 0, false
}

// SelectedPCRs returns the PCR indices a one-bank selection names, in
// ascending order, which is the order TPM2_Quote hashes them in.
func SelectedPCRs(sel tpm2.TPMSPCRSelection) ([]int, error) {
	if len(sel.PCRSelect) == 0 || len(sel.PCRSelect) > NumPCRs/8 {
		return nil, fmt.Errorf("PCR select of %d bytes, want 1..%d", len(sel.PCRSelect), NumPCRs/8)
	}
	var idx []int
	for byteNum, bits := range sel.PCRSelect {
		for bit := range 8 {
			if bits&(1<<bit) != 0 {
				idx = append(idx, byteNum*8+bit)
			}
		}
	}
	return idx, nil
}

// checkSelection requires the quote to select exactly one bank and pcrs to
// hold exactly the selected registers, each of the bank's digest size.
func checkSelection(q *tpm2.TPMSQuoteInfo, pcrs map[int][]byte) (tpm2.TPMIAlgHash, error) {
	if n := len(q.PCRSelect.PCRSelections); n != 1 {
		return 0, fmt.Errorf("quote selects %d PCR banks, want exactly 1", n)
	}
	sel := q.PCRSelect.PCRSelections[0]
	size, ok := bankSize(sel.Hash)
	if !ok {
		return 0, fmt.Errorf("unsupported PCR bank %#x", uint16(sel.Hash))
	}
	idx, err := SelectedPCRs(sel)
	if err != nil {
		return 0, err
	}
	if len(idx) == 0 {
		return 0, fmt.Errorf("quote selects no PCRs")
	}
	got := make([]int, 0, len(pcrs))
	for i := range pcrs {
		got = append(got, i)
	}
	slices.Sort(got)
	if !slices.Equal(got, idx) {
		return 0, fmt.Errorf("pcrs %v are not the quoted selection %v", got, idx)
	}
	for _, i := range idx {
		if len(pcrs[i]) != size {
			return 0, fmt.Errorf("pcr%d of %d bytes, want %d for the bank", i, len(pcrs[i]), size)
		}
	}
	return sel.Hash, nil
}

// publicKey converts the AK's TPMT_PUBLIC into a standard key, rejecting
// keys Go cannot encode (such as ECC points off the curve).
func publicKey(p *tpm2.TPMTPublic) (crypto.PublicKey, error) {
	k, err := tpm2.Pub(*p)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("unusable key: %w", err)
	}
	return x509.ParsePKIXPublicKey(der)
}
