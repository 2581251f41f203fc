package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/google/go-tpm/tpm2"
)

// Options configures a Verifier. A nil *Options trusts no AK, so every quote
// is rejected with "certificate: AK not trusted": a TPM quote proves nothing
// until the verifier knows the key that signed it belongs to a TPM.
type Options struct {
	// TrustedAKs lists AK public keys (*ecdsa.PublicKey or *rsa.PublicKey)
	// enrolled out of band. A quote signed by one of them is trusted without
	// a certificate. If empty, no key is trusted this way.
	TrustedAKs []crypto.PublicKey
	// Roots are CAs that certify AKs (for example Google's "EK/AK CA Root"
	// for GCE vTPMs). A quote whose evidence carries an AK certificate
	// chaining to one of them, for the same key, is trusted. If nil, AK
	// certificates are not accepted.
	Roots *x509.CertPool
	// Clock returns the verification time when the caller's VerifyOptions
	// leave Now zero. If nil, time.Now.
	Clock func() time.Time
}

// Verifier checks TPM quotes. It holds no mutable state and is safe for
// concurrent use.
type Verifier struct {
	trusted [][]byte // PKIX DER of the trusted AKs
	roots   *x509.CertPool
	clock   func() time.Time
}

var _ attest.Verifier = (*Verifier)(nil)

// NewVerifier returns a Verifier; opts may be nil. A trusted AK that cannot
// be encoded is a programming error and panics.
func NewVerifier(opts *Options) *Verifier {
	if opts == nil {
		opts = &Options{}
	}
	v := &Verifier{roots: opts.Roots, clock: opts.Clock}
	for i, k := range opts.TrustedAKs {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			panic(fmt.Sprintf("tpm: trusted AK %d: %v", i, err))
		}
		v.trusted = append(v.trusted, der)
	}
	if v.clock == nil {
		v.clock = time.Now
	}
	return v
}

// TEE returns attest.TPM.
func (v *Verifier) TEE() attest.TEE { return attest.TPM }

// Verify parses ev.Report as TPM evidence, establishes trust in the AK,
// verifies the quote's signature with it, recomputes the PCR digest from the
// supplied PCR values and returns the claims. It applies no policy.
func (v *Verifier) Verify(ctx context.Context, ev *attest.Evidence, opts *attest.VerifyOptions) (*attest.Claims, error) {
	if ev == nil {
		return nil, attest.Errorf(attest.CheckMalformed, "no evidence")
	}
	if ev.TEE != attest.TPM {
		return nil, attest.Errorf(attest.CheckMalformed, "tpm verifier given %s evidence", ev.TEE)
	}
	if len(ev.Certs) != 0 {
		return nil, attest.Errorf(attest.CheckMalformed, "tpm evidence carries its AK certificates inside the report, but the envelope has %d more", len(ev.Certs))
	}
	if err := ctx.Err(); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "tpm verification: %w", err)
	}
	now := opts.Time(v.clock)
	p, err := Parse(ev.Report)
	if err != nil {
		return nil, err
	}
	return v.VerifyParsed(p, now)
}

// VerifyParsed checks parsed evidence at now and returns its claims.
func (v *Verifier) VerifyParsed(p *Parsed, now time.Time) (*attest.Claims, error) {
	how, err := v.trustAK(p, now)
	if err != nil {
		return nil, err
	}
	if err := checkAKAttributes(p.AK); err != nil {
		return nil, attest.Errorf(attest.CheckCertificate, "AK not usable for quotes: %w", err)
	}
	if err := verifySignature(p.AKKey, p.Raw.Quote, p.Signature); err != nil {
		return nil, attest.Errorf(attest.CheckSignature, "quote signature does not verify with the AK: %w", err)
	}
	// The quote's pcrDigest is computed with the signing scheme's hash,
	// which verifySignature pinned to SHA-256.
	h := sha256.New()
	idx, _ := SelectedPCRs(p.QuoteInfo.PCRSelect.PCRSelections[0])
	for _, i := range idx {
		h.Write(p.Raw.PCRs[i])
	}
	if subtle.ConstantTimeCompare(h.Sum(nil), p.QuoteInfo.PCRDigest.Buffer) != 1 {
		return nil, attest.Errorf(attest.CheckSignature, "supplied PCR values do not match the signed PCR digest %x", p.QuoteInfo.PCRDigest.Buffer)
	}
	pcrs := make(map[int]attest.Hex, len(p.Raw.PCRs))
	for i, val := range p.Raw.PCRs {
		pcrs[i] = attest.Hex(bytes.Clone(val))
	}
	return &attest.Claims{
		TEE:         attest.TPM,
		Measurement: attest.Hex(bytes.Clone(p.QuoteInfo.PCRDigest.Buffer)),
		ReportData:  attest.Hex(bytes.Clone(p.Attest.ExtraData.Buffer)),
		PCRs:        pcrs,
		Platform: map[string]string{
			"ak_trust":         how,
			"pcr_bank":         bankName(p.Bank),
			"firmware_version": strconv.FormatUint(p.Attest.FirmwareVersion, 16),
			"reset_count":      strconv.FormatUint(uint64(p.Attest.ClockInfo.ResetCount), 10),
			"restart_count":    strconv.FormatUint(uint64(p.Attest.ClockInfo.RestartCount), 10),
		},
	}, nil
}

// trustAK says how the AK is trusted: listed in TrustedAKs, or certified by
// a chain to Roots. It fails closed.
func (v *Verifier) trustAK(p *Parsed, now time.Time) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(p.AKKey)
	if err != nil {
		return "", attest.Errorf(attest.CheckMalformed, "AK public key: %w", err)
	}
	for _, t := range v.trusted {
		if subtle.ConstantTimeCompare(t, der) == 1 {
			return "trusted key", nil
		}
	}
	if len(p.Raw.AKCerts) == 0 {
		return "", attest.Errorf(attest.CheckCertificate, "AK not trusted: it is not a trusted key and the evidence carries no AK certificate")
	}
	if v.roots == nil {
		return "", attest.Errorf(attest.CheckCertificate, "AK not trusted: it is not a trusted key and no AK certificate roots are configured")
	}
	certs := make([]*x509.Certificate, len(p.Raw.AKCerts))
	for i, b := range p.Raw.AKCerts {
		if certs[i], err = x509.ParseCertificate(b); err != nil {
			return "", attest.Errorf(attest.CheckCertificate, "AK certificate %d: %w", i, err)
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return "", attest.Errorf(attest.CheckExpired, "AK certificate at %s: %w", now.UTC().Format(time.RFC3339), err)
		}
		return "", attest.Errorf(attest.CheckCertificate, "AK not trusted: certificate does not chain to a trusted root: %w", err)
	}
	if leaf.BasicConstraintsValid && leaf.IsCA {
		return "", attest.Errorf(attest.CheckCertificate, "AK not trusted: AK certificate %q is a CA certificate", leaf.Subject)
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return "", attest.Errorf(attest.CheckCertificate, "AK not trusted: AK certificate %q lacks the digitalSignature key usage", leaf.Subject)
	}
	certDER, err := x509.MarshalPKIXPublicKey(leaf.PublicKey)
	if err != nil || subtle.ConstantTimeCompare(certDER, der) != 1 {
		return "", attest.Errorf(attest.CheckCertificate, "AK not trusted: the AK certificate certifies another key")
	}
	return "certificate " + leaf.Subject.String(), nil
}

// checkAKAttributes requires a restricted signing key that cannot leave its
// TPM. Restricted matters most: such a key signs only digests the TPM
// produced itself, so it cannot be made to sign a forged TPMS_ATTEST. The
// attributes are the AK's own claim, vouched for by whatever made it trusted.
func checkAKAttributes(ak *tpm2.TPMTPublic) error {
	a := ak.ObjectAttributes
	switch {
	case !a.Restricted:
		return fmt.Errorf("not a restricted key")
	case !a.SignEncrypt:
		return fmt.Errorf("not a signing key")
	case a.Decrypt:
		return fmt.Errorf("a decryption key")
	case !a.FixedTPM:
		return fmt.Errorf("not fixed to its TPM")
	}
	return nil
}

// verifySignature checks an ECDSA or RSASSA-PKCS1-v1_5 signature with
// SHA-256 over the TPMS_ATTEST bytes.
func verifySignature(key crypto.PublicKey, quote []byte, sig *tpm2.TPMTSignature) error {
	digest := sha256.Sum256(quote)
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if sig.SigAlg != tpm2.TPMAlgECDSA {
			return fmt.Errorf("signature algorithm %#x for an ECC key, want ECDSA", uint16(sig.SigAlg))
		}
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return err
		}
		if s.Hash != tpm2.TPMAlgSHA256 {
			return fmt.Errorf("signature hash %#x, want SHA-256", uint16(s.Hash))
		}
		r := new(big.Int).SetBytes(s.SignatureR.Buffer)
		ss := new(big.Int).SetBytes(s.SignatureS.Buffer)
		if !ecdsa.Verify(k, digest[:], r, ss) {
			return fmt.Errorf("ECDSA verification failed")
		}
		return nil
	case *rsa.PublicKey:
		if sig.SigAlg != tpm2.TPMAlgRSASSA {
			return fmt.Errorf("signature algorithm %#x for an RSA key, want RSASSA", uint16(sig.SigAlg))
		}
		s, err := sig.Signature.RSASSA()
		if err != nil {
			return err
		}
		if s.Hash != tpm2.TPMAlgSHA256 {
			return fmt.Errorf("signature hash %#x, want SHA-256", uint16(s.Hash))
		}
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], s.Sig.Buffer)
	}
	return fmt.Errorf("unsupported AK type %T", key)
}

func bankName(alg tpm2.TPMIAlgHash) string {
	switch alg {
	case tpm2.TPMAlgSHA1:
		return "sha1"
	case tpm2.TPMAlgSHA256:
		return "sha256"
	case tpm2.TPMAlgSHA384:
		return "sha384"
	case tpm2.TPMAlgSHA512:
		return "sha512"
	}
	return fmt.Sprintf("%#x", uint16(alg))
}
