package agentapi

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/internal/wire"
)

// ReportData is the report data of an agent's evidence:
//
//	attest.BindReportData(TagAgent, deviceSigningKey, deviceHPKEKey, configDigest)
//
// binding the device's Ed25519 signing key and X25519 HPKE key (the keys of
// its device certificate) and the digest of its effective configuration.
// Keys of the wrong size are refused, never truncated or padded.
func ReportData(deviceSigningKey, deviceHPKEKey []byte, configDigest Digest) ([attest.ReportDataSize]byte, error) {
	if len(deviceSigningKey) != ed25519.PublicKeySize {
		return [attest.ReportDataSize]byte{}, errorf(CheckMalformed, "device signing key is %d bytes, want %d", len(deviceSigningKey), ed25519.PublicKeySize)
	}
	if _, err := ecdh.X25519().NewPublicKey(deviceHPKEKey); err != nil {
		return [attest.ReportDataSize]byte{}, errorf(CheckMalformed, "device HPKE key is not an X25519 public key (%d bytes)", len(deviceHPKEKey))
	}
	return attest.BindReportData(TagAgent, deviceSigningKey, deviceHPKEKey, configDigest[:])
}

// Evidence is what an agent publishes with its device certificate: TEE
// evidence whose report data is ReportData(its device keys, Config.Digest())
// and the effective configuration itself, so a member can read what it
// verified.
type Evidence struct {
	Evidence *attest.Evidence `json:"evidence"`
	Config   Config           `json:"config"`
}

// ParseEvidence decodes an encoded Evidence strictly and validates its
// shape and configuration (not the evidence: that is Verify).
func ParseEvidence(b []byte) (*Evidence, error) {
	if len(b) > MaxEvidenceSize {
		return nil, errorf(CheckMalformed, "agent evidence of %d bytes exceeds %d", len(b), MaxEvidenceSize)
	}
	var e Evidence
	if err := wire.Decode(b, &e); err != nil {
		return nil, errorf(CheckMalformed, "agent evidence: %w", err)
	}
	if e.Evidence == nil {
		return nil, errorf(CheckMalformed, "agent evidence: no TEE evidence")
	}
	if err := e.Evidence.Validate(); err != nil {
		return nil, errorf(CheckMalformed, "agent evidence: %w", err)
	}
	if err := e.Config.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// VerifyOptions are the inputs of Evidence.Verify.
type VerifyOptions struct {
	// Checker verifies TEE evidence (attest/verifiers.New). Required.
	Checker *attest.Checker
	// Policy is the member's agent policy. Required; a nil policy allows
	// nothing.
	Policy *attest.Policy
	// SigningKey and HPKEKey are the keys of the device certificate the
	// evidence came with. Required.
	SigningKey, HPKEKey []byte
	// Now is the verification time. If zero, time.Now().
	Now time.Time
	// Warn receives policy warnings. If nil, dropped.
	Warn func(string)
}

// Verify checks, in order: the configuration is valid; the report data is
// ReportData(keys, Config.Digest()); the evidence satisfies the policy (its
// allow list first, then the TEE's verifier, then the policy over the
// claims). It returns the claims only when all passed. Errors are *Error
// (CheckConfig, CheckMalformed, CheckEvidence) wrapping the attest error
// that names the failed check.
func (e *Evidence) Verify(ctx context.Context, o *VerifyOptions) (*attest.Claims, error) {
	if o == nil || o.Checker == nil || o.Policy == nil {
		return nil, errorf(CheckEvidence, "no verifier or policy")
	}
	if e.Evidence == nil {
		return nil, errorf(CheckMalformed, "agent evidence: no TEE evidence")
	}
	if err := e.Config.Validate(); err != nil {
		return nil, err
	}
	rd, err := ReportData(o.SigningKey, o.HPKEKey, e.Config.Digest())
	if err != nil {
		return nil, err
	}
	claims, err := o.Checker.Check(ctx, e.Evidence, o.Policy, &attest.CheckOptions{Now: o.Now, ReportData: rd[:], Warn: o.Warn})
	if err != nil {
		return nil, errorf(CheckEvidence, "%w", err)
	}
	return claims, nil
}
