package sim

import (
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/chatmcp/chatmcp/attest"
)

// Options configure an Attester.
type Options struct {
	// Measurement is the simulated measurement. If nil, the environment
	// variable CHATMCP_SIM_MEASUREMENT (96 hex digits) is used when set, and
	// otherwise the SHA-384 of the running executable.
	Measurement []byte
	// Getenv reads the environment. If nil, os.Getenv.
	Getenv func(string) string
	// Executable returns the path of the running program. If nil,
	// os.Executable.
	Executable func() (string, error)
	// Now is the clock stamped into evidence. If nil, time.Now.
	Now func() time.Time
}

// Attester produces INSECURE simulated evidence (see the package comment).
type Attester struct {
	measurement [MeasurementSize]byte
	key         ed25519.PrivateKey
	now         func() time.Time
}

var _ attest.Attester = (*Attester)(nil)

// NewAttester returns a simulator attester, resolving its measurement once.
func NewAttester(opts *Options) (*Attester, error) {
	if opts == nil {
		opts = &Options{}
	}
	a := &Attester{key: privateKey(), now: opts.Now}
	if a.now == nil {
		a.now = time.Now
	}
	m, err := resolveMeasurement(opts)
	if err != nil {
		return nil, fmt.Errorf("sim: measurement: %w", err)
	}
	a.measurement = m
	return a, nil
}

func resolveMeasurement(opts *Options) ([MeasurementSize]byte, error) {
	var m [MeasurementSize]byte
	if opts.Measurement != nil {
		if len(opts.Measurement) != MeasurementSize {
			return m, fmt.Errorf("%d bytes, want %d", len(opts.Measurement), MeasurementSize)
		}
		copy(m[:], opts.Measurement)
		return m, nil
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(MeasurementEnv); v != "" {
		b, err := hex.DecodeString(v)
		if err != nil {
			return m, fmt.Errorf("%s: %w", MeasurementEnv, err)
		}
		if len(b) != MeasurementSize {
			return m, fmt.Errorf("%s: %d bytes, want %d", MeasurementEnv, len(b), MeasurementSize)
		}
		copy(m[:], b)
		return m, nil
	}
	exe := opts.Executable
	if exe == nil {
		exe = os.Executable
	}
	path, err := exe()
	if err != nil {
		return m, fmt.Errorf("finding the executable: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return m, fmt.Errorf("hashing the executable: %w", err)
	}
	defer f.Close()
	h := sha512.New384()
	if _, err := io.Copy(h, f); err != nil {
		return m, fmt.Errorf("hashing the executable: %w", err)
	}
	copy(m[:], h.Sum(nil))
	return m, nil
}

// TEE returns attest.Sim.
func (a *Attester) TEE() attest.TEE { return attest.Sim }

// Measurement returns the simulated measurement this attester reports.
func (a *Attester) Measurement() []byte { return append([]byte(nil), a.measurement[:]...) }

// Attest returns simulated evidence binding reportData, stamped with the
// current time. It is signed with the publicly known simulator key.
func (a *Attester) Attest(ctx context.Context, reportData [attest.ReportDataSize]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := marshal(a.now(), a.measurement, reportData)
	if err != nil {
		return nil, fmt.Errorf("sim: encoding evidence: %w", err)
	}
	return &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.Sim, Report: b}, nil
}
