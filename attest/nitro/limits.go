package nitro

// Size limits from the AWS Nitro Enclaves attestation document specification
// (aws/aws-nitro-enclaves-nsm-api, docs/attestation_process.md). The decoder
// enforces them after decoding, and the CBOR decoder's own caps (nesting,
// array and map sizes) keep allocation bounded before that.
const (
	// MaxModuleIDLen caps module_id (text .size (1..255)).
	MaxModuleIDLen = 255
	// MaxPCRs caps the number of PCRs (index 0..31).
	MaxPCRs = 32
	// MaxCertLen caps the leaf certificate and each cabundle entry
	// (bstr .size (1..1024)).
	MaxCertLen = 1024
	// MaxCABundle caps the number of cabundle certificates. AWS issues four
	// (root, regional, zonal, instance); the specification sets no bound, so
	// this is a generous local one.
	MaxCABundle = 8
	// MaxUserDataLen, MaxNonceLen and MaxPublicKeyLen cap the optional
	// caller-supplied fields (bstr .size (0..1024) each).
	MaxUserDataLen  = 1024
	MaxNonceLen     = 1024
	MaxPublicKeyLen = 1024
)
