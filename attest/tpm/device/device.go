// Package device produces TPM evidence (an AK-signed quote over PCRs, in
// package tpm's format) from a TPM 2.0 such as /dev/tpmrm0; it is kept apart
// from package tpm so that verifiers never link device code.
package device

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"os"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/tpm"
	"github.com/google/go-tpm-tools/client"
	"github.com/google/go-tpm/legacy/tpm2"
)

// DefaultPath is the kernel's TPM resource manager.
const DefaultPath = "/dev/tpmrm0"

// Options configures an Attester. A nil *Options means all defaults.
type Options struct {
	// Open opens the TPM. If nil, DefaultPath is opened read-write.
	Open func() (io.ReadWriteCloser, error)
	// PCRs are the SHA-256 bank registers to quote. If nil, 0 through 7
	// (firmware, boot loader and their configuration).
	PCRs []int
	// GCE selects the Google Compute Engine AK, whose template and
	// certificate Google provisions in the vTPM's NV storage; the evidence
	// then carries that certificate (verify it with Google's "EK/AK CA Root").
	// If false, go-tpm-tools' generic ECC AK under the owner hierarchy is
	// used and the evidence carries no certificate.
	GCE bool
}

// Attester quotes PCRs with the TPM's ECC attestation key (go-tpm-tools'
// standard AK template under the owner hierarchy, persisted at its default
// handle, or the GCE AK). It opens the TPM for each call and holds no state.
type Attester struct {
	open func() (io.ReadWriteCloser, error)
	pcrs []int
	gce  bool
}

var _ attest.Attester = (*Attester)(nil)

// NewAttester returns an Attester; opts may be nil.
func NewAttester(opts *Options) *Attester {
	if opts == nil {
		opts = &Options{}
	}
	a := &Attester{open: opts.Open, pcrs: opts.PCRs, gce: opts.GCE}
	if a.open == nil {
		a.open = func() (io.ReadWriteCloser, error) { return os.OpenFile(DefaultPath, os.O_RDWR, 0) }
	}
	if a.pcrs == nil {
		a.pcrs = []int{0, 1, 2, 3, 4, 5, 6, 7}
	}
	return a
}

// TEE returns attest.TPM.
func (a *Attester) TEE() attest.TEE { return attest.TPM }

// AKPublic returns the attestation key's public key, for enrolling it in a
// verifier's tpm.Options.TrustedAKs.
func (a *Attester) AKPublic(ctx context.Context) (crypto.PublicKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rw, err := a.open()
	if err != nil {
		return nil, fmt.Errorf("opening the TPM: %w", err)
	}
	defer rw.Close()
	ak, err := a.loadAK(rw)
	if err != nil {
		return nil, err
	}
	defer ak.Close()
	return ak.PublicKey(), nil
}

// Attest quotes the configured PCRs with reportData as the quote's
// qualifying data (extraData), so the quote binds all 64 bytes.
func (a *Attester) Attest(ctx context.Context, reportData [attest.ReportDataSize]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rw, err := a.open()
	if err != nil {
		return nil, fmt.Errorf("opening the TPM: %w", err)
	}
	defer rw.Close()
	ak, err := a.loadAK(rw)
	if err != nil {
		return nil, err
	}
	defer ak.Close()
	pub, err := ak.PublicArea().Encode()
	if err != nil {
		return nil, fmt.Errorf("encoding the attestation key: %w", err)
	}
	q, err := ak.Quote(tpm2.PCRSelection{Hash: tpm2.AlgSHA256, PCRs: a.pcrs}, reportData[:])
	if err != nil {
		return nil, fmt.Errorf("quoting PCRs %v: %w", a.pcrs, err)
	}
	at := &tpm.Attestation{
		Version:   tpm.FormatVersion,
		AKPublic:  pub,
		Quote:     q.GetQuote(),
		Signature: q.GetRawSig(),
		PCRs:      make(map[int][]byte, len(q.GetPcrs().GetPcrs())),
	}
	if der := ak.CertDERBytes(); der != nil {
		at.AKCerts = [][]byte{der}
	}
	for i, v := range q.GetPcrs().GetPcrs() {
		at.PCRs[int(i)] = v
	}
	b, err := at.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encoding TPM evidence: %w", err)
	}
	return &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.TPM, Report: b}, nil
}

func (a *Attester) loadAK(rw io.ReadWriter) (*client.Key, error) {
	load := client.AttestationKeyECC
	if a.gce {
		load = client.GceAttestationKeyECC
	}
	ak, err := load(rw)
	if err != nil {
		return nil, fmt.Errorf("loading the attestation key: %w", err)
	}
	return ak, nil
}
