package attest

// Size limits for untrusted evidence. They are generous multiples of the
// largest real evidence seen (a TDX quote with its PCK chain is about 5 KB,
// a Nitro document about 4.5 KB) and exist so that no parser allocates in
// proportion to attacker-chosen lengths.
const (
	// MaxEvidenceSize caps a raw vendor report or quote.
	MaxEvidenceSize = 64 << 10
	// MaxEnvelopeSize caps a JSON evidence envelope (base64 inflates by 4/3).
	MaxEnvelopeSize = 256 << 10
	// MaxCerts caps the certificates carried beside the evidence.
	MaxCerts = 8
	// MaxCertSize caps one DER certificate.
	MaxCertSize = 8 << 10
	// MaxPolicySize caps a policy file.
	MaxPolicySize = 64 << 10
)
