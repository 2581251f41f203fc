// Package fake builds TPM evidence in software, signed by generated keys, for
// tests that need shapes a real TPM will not produce; nothing it makes comes
// from a TPM.
package fake

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/chatmcp/chatmcp/attest/tpm"
	"github.com/google/go-tpm/tpm2"
)

// AKAttributes are those of go-tpm-tools' AK template: a restricted signing
// key fixed to its TPM.
func AKAttributes() tpm2.TPMAObject {
	return tpm2.TPMAObject{
		FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
		UserWithAuth: true, Restricted: true, SignEncrypt: true,
	}
}

// Builder holds the parts of one piece of evidence; tests change fields and
// call Build.
type Builder struct {
	Key        crypto.Signer
	Attributes tpm2.TPMAObject
	ExtraData  []byte
	Bank       tpm2.TPMIAlgHash
	PCRs       map[int][]byte
	// SigHash is the signature's hash algorithm. If zero, SHA-256.
	SigHash tpm2.TPMIAlgHash
	AKCerts [][]byte
	// MutateQuote, when set, changes the TPMS_ATTEST before signing.
	MutateQuote func(*tpm2.TPMSAttest)
}

// NewBuilder returns a builder for a valid quote of PCRs 0..7 (SHA-256 bank,
// PCR i filled with byte i) signed by key (*ecdsa.PrivateKey on P-256 or
// *rsa.PrivateKey).
func NewBuilder(key crypto.Signer, extraData []byte) *Builder {
	pcrs := map[int][]byte{}
	for i := range 8 {
		v := make([]byte, 32)
		for j := range v {
			v[j] = byte(i)
		}
		pcrs[i] = v
	}
	return &Builder{Key: key, Attributes: AKAttributes(), ExtraData: extraData, Bank: tpm2.TPMAlgSHA256, PCRs: pcrs}
}

// P256 generates an ECDSA P-256 key.
func P256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Public returns the TPMT_PUBLIC of key with attrs.
func Public(t testing.TB, key crypto.PublicKey, attrs tpm2.TPMAObject) *tpm2.TPMTPublic {
	t.Helper()
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return &tpm2.TPMTPublic{
			Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
				Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
				Scheme: tpm2.TPMTECCScheme{
					Scheme:  tpm2.TPMAlgECDSA,
					Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
				},
				CurveID: tpm2.TPMECCNistP256,
				KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
			}),
			Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
				X: tpm2.TPM2BECCParameter{Buffer: k.X.FillBytes(make([]byte, 32))},
				Y: tpm2.TPM2BECCParameter{Buffer: k.Y.FillBytes(make([]byte, 32))},
			}),
		}
	case *rsa.PublicKey:
		return &tpm2.TPMTPublic{
			Type: tpm2.TPMAlgRSA, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
				Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
				Scheme: tpm2.TPMTRSAScheme{
					Scheme:  tpm2.TPMAlgRSASSA,
					Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256}),
				},
				KeyBits: tpm2.TPMIRSAKeyBits(k.N.BitLen()),
			}),
			Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: k.N.Bytes()}),
		}
	}
	t.Fatalf("unsupported key %T", key)
	return nil
}

// Build signs the quote and returns the evidence.
func (b *Builder) Build(t testing.TB) *tpm.Attestation {
	t.Helper()
	idx := make([]int, 0, len(b.PCRs))
	for i := range 24 {
		if _, ok := b.PCRs[i]; ok {
			idx = append(idx, i)
		}
	}
	sel := make([]byte, 3)
	h := sha256.New()
	for _, i := range idx {
		sel[i/8] |= 1 << (i % 8)
		h.Write(b.PCRs[i])
	}
	q := tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: append([]byte{0, 0x0b}, make([]byte, 32)...)},
		ExtraData:       tpm2.TPM2BData{Buffer: b.ExtraData},
		ClockInfo:       tpm2.TPMSClockInfo{Clock: 1000, ResetCount: 1, Safe: true},
		FirmwareVersion: 0x2016051100162800,
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: b.Bank, PCRSelect: sel}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)},
		}),
	}
	if b.MutateQuote != nil {
		b.MutateQuote(&q)
	}
	quote := tpm2.Marshal(q)
	sigHash := b.SigHash
	if sigHash == 0 {
		sigHash = tpm2.TPMAlgSHA256
	}
	digest := sha256.Sum256(quote)
	var sig tpm2.TPMTSignature
	switch k := b.Key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
			Hash:       sigHash,
			SignatureR: tpm2.TPM2BECCParameter{Buffer: r.FillBytes(make([]byte, 32))},
			SignatureS: tpm2.TPM2BECCParameter{Buffer: s.FillBytes(make([]byte, 32))},
		})}
	case *rsa.PrivateKey:
		s, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgRSASSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA, &tpm2.TPMSSignatureRSA{
			Hash: sigHash, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: s},
		})}
	default:
		t.Fatalf("unsupported key %T", b.Key)
	}
	return &tpm.Attestation{
		Version:   tpm.FormatVersion,
		AKPublic:  tpm2.Marshal(*Public(t, b.Key.Public(), b.Attributes)),
		AKCerts:   b.AKCerts,
		Quote:     quote,
		Signature: tpm2.Marshal(sig),
		PCRs:      b.PCRs,
	}
}

// Encode marshals a, failing the test on error.
func Encode(t testing.TB, a *tpm.Attestation) []byte {
	t.Helper()
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
