// Package devices picks the TEE attester of the machine a daemon runs on:
// the SEV-SNP, TDX, Nitro or TPM device it finds, or the one the operator
// names. It is the only place where daemons reach device code; verifiers
// never import it.
package devices

import (
	"errors"
	"fmt"
	"os"

	"github.com/chatmcp/chatmcp/attest"
	nitrodevice "github.com/chatmcp/chatmcp/attest/nitro/device"
	snpdevice "github.com/chatmcp/chatmcp/attest/sevsnp/device"
	tdxdevice "github.com/chatmcp/chatmcp/attest/tdx/device"
	tpmdevice "github.com/chatmcp/chatmcp/attest/tpm/device"
)

// ErrNoDevice means no TEE device was found.
var ErrNoDevice = errors.New("no TEE device found")

// candidate is a device node that identifies a TEE.
type candidate struct {
	tee  attest.TEE
	path string
}

// candidates are the device nodes Detect looks for, in order of
// preference: the hardware TEEs first, the TPM last (confidential VMs often
// have a vTPM as well, and their CPU TEE is the stronger statement).
func candidates() []candidate {
	return []candidate{
		{attest.SEVSNP, "/dev/sev-guest"},
		{attest.TDX, "/dev/tdx_guest"},
		{attest.Nitro, "/dev/nsm"},
		{attest.TPM, tpmdevice.DefaultPath},
	}
}

// Options configure Detect.
type Options struct {
	// TEE names the attester to use. If empty, the first device found in
	// the order SEV-SNP, TDX, Nitro, TPM. "sim" is refused: simulated
	// evidence is chosen by a daemon's --dev flag, never by detection.
	TEE attest.TEE
	// Exists reports whether a device node exists. If nil, os.Stat.
	Exists func(path string) bool
}

// Detect returns the attester for the TEE named in opts, or for the first
// device found. It fails with ErrNoDevice when there is none, so a daemon
// outside a TEE refuses to start rather than serve unattested.
func Detect(opts *Options) (attest.Attester, error) {
	if opts == nil {
		opts = &Options{}
	}
	exists := opts.Exists
	if exists == nil {
		exists = func(p string) bool { _, err := os.Stat(p); return err == nil }
	}
	if opts.TEE != "" {
		return New(opts.TEE)
	}
	var looked []string
	for _, d := range candidates() {
		if exists(d.path) {
			return New(d.tee)
		}
		looked = append(looked, d.path)
	}
	return nil, fmt.Errorf("%w (looked for %v)", ErrNoDevice, looked)
}

// New returns the attester for tee with the device's default options.
func New(tee attest.TEE) (attest.Attester, error) {
	switch tee {
	case attest.SEVSNP:
		return snpdevice.New(nil), nil
	case attest.TDX:
		return tdxdevice.New(nil), nil
	case attest.Nitro:
		return nitrodevice.NewAttester(nil), nil
	case attest.TPM:
		return tpmdevice.NewAttester(nil), nil
	case attest.Sim:
		return nil, errors.New("the simulated TEE is not a device: use --dev")
	}
	return nil, fmt.Errorf("unknown TEE type %q", tee)
}
