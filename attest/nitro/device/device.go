// Package device produces AWS Nitro Enclaves attestation documents from the
// Nitro Secure Module (/dev/nsm) inside an enclave; it is kept apart from
// package nitro so that verifiers never link device code.
package device

import (
	"bytes"
	"context"
	"fmt"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/nitro"
	"github.com/hf/nsm"
	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"
)

// Session is the part of an NSM session the Attester uses; *nsm.Session
// implements it.
type Session interface {
	Send(req request.Request) (response.Response, error)
	Close() error
}

// Options configures an Attester. A nil *Options means all defaults.
type Options struct {
	// Open opens an NSM session. If nil, /dev/nsm is opened with
	// nsm.OpenDefaultSession.
	Open func() (Session, error)
}

// Attester asks the NSM for attestation documents. It opens one session per
// call and holds no state.
type Attester struct {
	open func() (Session, error)
}

var _ attest.Attester = (*Attester)(nil)

// NewAttester returns an Attester; opts may be nil.
func NewAttester(opts *Options) *Attester {
	a := &Attester{}
	if opts != nil {
		a.open = opts.Open
	}
	if a.open == nil {
		a.open = func() (Session, error) { return nsm.OpenDefaultSession() }
	}
	return a
}

// TEE returns attest.Nitro.
func (a *Attester) TEE() attest.TEE { return attest.Nitro }

// Attest requests a document whose user_data is reportData (no nonce, no
// public key: ChatMCP binds both into reportData). The returned document is
// parsed and its user_data compared with reportData, so a misbehaving device
// is caught here rather than by a remote verifier.
func (a *Attester) Attest(ctx context.Context, reportData [attest.ReportDataSize]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := a.open()
	if err != nil {
		return nil, fmt.Errorf("opening the Nitro Secure Module: %w", err)
	}
	defer s.Close()
	res, err := s.Send(&request.Attestation{UserData: bytes.Clone(reportData[:])})
	if err != nil {
		return nil, fmt.Errorf("nsm attestation request: %w", err)
	}
	if res.Error != "" {
		return nil, fmt.Errorf("nsm attestation request: device error %s", res.Error)
	}
	if res.Attestation == nil || len(res.Attestation.Document) == 0 {
		return nil, fmt.Errorf("nsm attestation request: response has no document")
	}
	doc := res.Attestation.Document
	parsed, err := nitro.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("nsm returned an unusable document: %w", err)
	}
	if !bytes.Equal(parsed.Document.UserData, reportData[:]) {
		return nil, fmt.Errorf("nsm returned a document with user_data %x, not the requested report data", parsed.Document.UserData)
	}
	return &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.Nitro, Report: doc}, nil
}
