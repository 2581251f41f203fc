package attest

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Hex is a byte string that reads and writes as lowercase hex in JSON and
// YAML.
type Hex []byte

func (h Hex) String() string { return hex.EncodeToString(h) }

// MarshalText encodes h as lowercase hex.
func (h Hex) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText decodes hex, upper or lower case, with an optional 0x prefix.
func (h *Hex) UnmarshalText(b []byte) error {
	s := strings.TrimPrefix(strings.TrimPrefix(string(b), "0x"), "0X")
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("invalid hex %q: %w", string(b), err)
	}
	*h = v
	return nil
}

// TCBVersion is an AMD SEV-SNP TCB: the security version numbers of the
// firmware components. A TCB is at least another when every component is.
type TCBVersion struct {
	BootLoader uint8 `json:"bootloader" yaml:"bootloader"`
	TEE        uint8 `json:"tee" yaml:"tee"`
	SNP        uint8 `json:"snp" yaml:"snp"`
	Microcode  uint8 `json:"microcode" yaml:"microcode"`
}

// AtLeast reports whether every component of t is at least min's.
func (t TCBVersion) AtLeast(min TCBVersion) bool {
	return t.BootLoader >= min.BootLoader && t.TEE >= min.TEE && t.SNP >= min.SNP && t.Microcode >= min.Microcode
}

func (t TCBVersion) String() string {
	return fmt.Sprintf("bootloader=%d tee=%d snp=%d microcode=%d", t.BootLoader, t.TEE, t.SNP, t.Microcode)
}

// Claims are what verified evidence says, normalized across TEEs. A Verifier
// fills the fields its TEE has and leaves the others zero.
type Claims struct {
	// TEE is the type of the environment that produced the evidence.
	TEE TEE `json:"tee"`
	// Measurement identifies the launched code: SEV-SNP MEASUREMENT, TDX
	// MRTD, Nitro PCR0, the TPM quote's PCR digest, the simulator's value.
	Measurement Hex `json:"measurement"`
	// ReportData is the caller-chosen data bound into the evidence: SEV-SNP
	// and TDX REPORT_DATA, Nitro user_data, the TPM quote's qualifying data.
	ReportData Hex `json:"report_data"`
	// Debug is true when the environment allows a host to inspect it.
	Debug bool `json:"debug"`
	// Time is when the evidence was produced, when the evidence says so
	// (Nitro, the simulator); zero otherwise.
	Time time.Time `json:"time,omitzero"`
	// Insecure is true for simulated evidence, which proves nothing.
	Insecure bool `json:"insecure,omitempty"`

	// VMPL is the SEV-SNP virtual machine privilege level of the requester.
	VMPL *int `json:"vmpl,omitempty"`
	// TCB is the SEV-SNP reported TCB.
	TCB *TCBVersion `json:"tcb,omitempty"`
	// RTMRs are the TDX runtime measurement registers 0 to 3.
	RTMRs []Hex `json:"rtmrs,omitempty"`
	// TCBStatus is the TDX TCB status from Intel's collateral, when it was
	// checked ("UpToDate", "OutOfDate", ...).
	TCBStatus string `json:"tcb_status,omitempty"`
	// PCRs are Nitro or TPM platform configuration registers by index.
	PCRs map[int]Hex `json:"pcrs,omitempty"`
	// Nonce is the Nitro document's nonce.
	Nonce Hex `json:"nonce,omitempty"`
	// PublicKey is the Nitro document's public_key.
	PublicKey Hex `json:"public_key,omitempty"`
	// Platform holds informational identifiers (chip ID, module ID, ...)
	// that no policy check reads.
	Platform map[string]string `json:"platform,omitempty"`
}
