package sevsnp

import (
	"encoding/binary"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
)

// ReportSize is the size of an SEV-SNP ATTESTATION_REPORT.
const ReportSize = abi.ReportSize

// signedSize is how many leading bytes of a report its signature covers
// (SEV-SNP ABI, ATTESTATION_REPORT: everything before SIGNATURE at 0x2A0).
const signedSize = 0x2A0

// Report is a parsed SEV-SNP attestation report. Parsing checks only its
// format; nothing in it is trusted until Verify has checked its signature.
type Report struct {
	// Raw is the report exactly as received (ReportSize bytes).
	Raw []byte
	// Proto is go-sev-guest's decoding of Raw.
	Proto *spb.Report
	// Signer is the kind of key the report says signed it (VCEK or VLEK).
	Signer abi.ReportSigner
}

// ParseReport decodes a raw ATTESTATION_REPORT strictly: the size must be
// exactly ReportSize, the version one go-sev-guest knows (2 to 5), the guest
// policy's reserved bits as the ABI requires, the must-be-zero ranges zero,
// the signature algorithm ECDSA P-384 with SHA-384 and the signing key a
// VCEK or a VLEK. Every error is an *attest.Error with Check malformed.
func ParseReport(b []byte) (*Report, error) {
	if len(b) != ReportSize {
		return nil, attest.Errorf(attest.CheckMalformed, "SEV-SNP report is %d bytes, want %d", len(b), ReportSize)
	}
	if err := abi.ValidateReportFormat(b); err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "SEV-SNP report: %w", err)
	}
	if algo := binary.LittleEndian.Uint32(b[0x34:0x38]); algo != abi.SignEcdsaP384Sha384 {
		return nil, attest.Errorf(attest.CheckMalformed, "SEV-SNP report: signature algorithm %d, want %d (ECDSA P-384 with SHA-384)", algo, abi.SignEcdsaP384Sha384)
	}
	pb, err := abi.ReportToProto(b)
	if err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "SEV-SNP report: %w", err)
	}
	info, err := abi.ParseSignerInfo(pb.GetSignerInfo())
	if err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "SEV-SNP report: signer info: %w", err)
	}
	if info.SigningKey != abi.VcekReportSigner && info.SigningKey != abi.VlekReportSigner {
		return nil, attest.Errorf(attest.CheckMalformed, "SEV-SNP report: signing key %v is neither VCEK nor VLEK", info.SigningKey)
	}
	raw := make([]byte, ReportSize)
	copy(raw, b)
	return &Report{Raw: raw, Proto: pb, Signer: info.SigningKey}, nil
}
