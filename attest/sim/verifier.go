package sim

import (
	"context"
	"crypto/ed25519"

	"github.com/chatmcp/chatmcp/attest"
)

// Verifier checks simulated evidence. Passing its checks means only that the
// evidence was produced by someone who has this package's public source,
// i.e. anyone (see the package comment). Claims it returns have Insecure set.
type Verifier struct {
	pub ed25519.PublicKey
}

var _ attest.Verifier = (*Verifier)(nil)

// NewVerifier returns a verifier for simulated evidence.
func NewVerifier() *Verifier { return &Verifier{pub: PublicKey()} }

// TEE returns attest.Sim.
func (v *Verifier) TEE() attest.TEE { return attest.Sim }

// Verify parses ev strictly and checks the simulator signature. Time, age and
// report data are left to the policy, like for every TEE.
func (v *Verifier) Verify(ctx context.Context, ev *attest.Evidence, _ *attest.VerifyOptions) (*attest.Claims, error) {
	if ev == nil || ev.TEE != attest.Sim {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: not simulator evidence")
	}
	if len(ev.Certs) != 0 {
		return nil, attest.Errorf(attest.CheckMalformed, "sim: evidence carries %d certificates, want none", len(ev.Certs))
	}
	s, err := Parse(ev.Report)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(v.pub, signedBytes(s.raw), s.signature) {
		return nil, attest.Errorf(attest.CheckSignature, "sim: bad signature by the simulator key")
	}
	return &attest.Claims{
		TEE:         attest.Sim,
		Measurement: append(attest.Hex(nil), s.Measurement[:]...),
		ReportData:  append(attest.Hex(nil), s.ReportData[:]...),
		Time:        s.Time,
		Insecure:    true,
		Platform:    map[string]string{"warning": "simulated TEE: anyone can forge this evidence"},
	}, nil
}
