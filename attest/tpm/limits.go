package tpm

// Size limits for TPM evidence. The TPM structures are small (an RSA-2048 AK's
// TPMT_PUBLIC is about 280 bytes, a quote about 150); the caps are generous
// multiples so no parser allocates in proportion to attacker-chosen lengths.
const (
	// MaxAKPublicLen caps the AK's TPMT_PUBLIC.
	MaxAKPublicLen = 1024
	// MaxQuoteLen caps the TPMS_ATTEST.
	MaxQuoteLen = 1024
	// MaxSignatureLen caps the TPMT_SIGNATURE (an RSA-4096 signature is 518
	// bytes).
	MaxSignatureLen = 1024
	// MaxAKCerts caps the AK certificate chain (AK certificate first).
	MaxAKCerts = 4
	// MaxAKCertLen caps one DER certificate.
	MaxAKCertLen = 8 << 10
	// NumPCRs is the number of PCRs in a PC Client TPM bank (0..23).
	NumPCRs = 24
	// MaxExtraDataLen is the largest TPM2B_DATA a TPM accepts (sizeof(TPMU_HA)
	// with SHA-512).
	MaxExtraDataLen = 64
)
