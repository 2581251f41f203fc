package agentapi

import (
	"time"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/wallet"
)

// Decision is an approver's answer.
type Decision string

// Decisions.
const (
	Approve Decision = "approve"
	Deny    Decision = "deny"
)

// ApprovalStatement is an approver's decision on one held call, signed by
// one of the approver's devices under TagApproval. The approver's client
// delivers it to the gateway, which accepts it only when Approver is the
// wallet the call's grant names, ArgumentsSHA256 is the held call's, and it
// has not expired; the gateway also makes it single-use.
type ApprovalStatement struct {
	ApprovalID      string   `json:"approval_id"`
	ArgumentsSHA256 Digest   `json:"arguments_sha256"`
	Decision        Decision `json:"decision"`
	// Expires is when the statement stops counting, Unix milliseconds.
	Expires  int64               `json:"expires"`
	Approver wallet.Address      `json:"approver"`
	Device   envelope.DeviceCert `json:"device"`
	Sig      []byte              `json:"sig"`
}

func (s *ApprovalStatement) signed() []byte {
	c := newCanon(TagApproval)
	c.str(s.ApprovalID)
	c.bytes(s.ArgumentsSHA256[:])
	c.str(string(s.Decision))
	c.i64(s.Expires)
	c.str(s.Approver.String())
	c.str(s.Device.Device)
	c.bytes(s.Device.Signing)
	return c.done()
}

// NewApprovalStatement has device d (certified by the approver's wallet)
// sign a decision on approval id, valid until expires.
func NewApprovalStatement(d *envelope.Device, id string, argsSHA256 Digest, decision Decision, expires time.Time) (*ApprovalStatement, error) {
	s := &ApprovalStatement{ApprovalID: id, ArgumentsSHA256: argsSHA256, Decision: decision,
		Expires: expires.UnixMilli(), Approver: d.Cert.Wallet, Device: d.Cert}
	if err := s.validate(); err != nil {
		return nil, err
	}
	s.Sig = d.SignDomain(TagApproval, s.signed())
	return s, nil
}

func (s *ApprovalStatement) validate() error {
	switch {
	case !validID(s.ApprovalID):
		return errorf(CheckMalformed, "approval statement: approval id is not 32 lowercase hex characters")
	case s.ArgumentsSHA256.IsZero():
		return errorf(CheckMalformed, "approval statement: no arguments hash")
	case s.Decision != Approve && s.Decision != Deny:
		return errorf(CheckMalformed, "approval statement: decision %q, want approve or deny", truncate(string(s.Decision), 20))
	case s.Expires <= 0:
		return errorf(CheckMalformed, "approval statement: no expiry")
	case s.Approver.IsZero():
		return errorf(CheckMalformed, "approval statement: no approver")
	}
	return nil
}

// ParseApprovalStatement decodes an encoded statement strictly. It does not
// verify it (Verify does).
func ParseApprovalStatement(b []byte) (*ApprovalStatement, error) {
	if len(b) > MaxStatementSize {
		return nil, errorf(CheckMalformed, "approval statement of %d bytes exceeds %d", len(b), MaxStatementSize)
	}
	var s ApprovalStatement
	if err := wire.Decode(b, &s); err != nil {
		return nil, errorf(CheckMalformed, "approval statement: %w", err)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Verify checks, in order: the statement's shape; the device certificate
// verifies and is certified by Approver's wallet; the device's signature;
// the statement has not expired at now and does not expire more than
// MaxStatementLifetime after now. Who may approve (the grant's approver)
// and the match with the held call are the gateway's checks. Errors are
// *Error naming the check.
func (s *ApprovalStatement) Verify(now time.Time) error {
	if err := s.validate(); err != nil {
		return err
	}
	if err := s.Device.Verify(); err != nil {
		return errorf(CheckCertificate, "approval statement: %w", err)
	}
	if !s.Device.Wallet.Equal(s.Approver) {
		return errorf(CheckApprover, "approval statement: device %s is certified by %s, not by the approver %s", s.Device.Device, s.Device.Wallet, s.Approver)
	}
	if !envelope.VerifyDomain(s.Device.Signing, TagApproval, s.signed(), s.Sig) {
		return errorf(CheckSignature, "approval statement: signature does not verify")
	}
	exp := time.UnixMilli(s.Expires)
	if !now.Before(exp) {
		return errorf(CheckExpired, "approval statement expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if exp.Sub(now) > MaxStatementLifetime*time.Second {
		return errorf(CheckExpired, "approval statement expires at %s, more than %d s ahead", exp.UTC().Format(time.RFC3339), MaxStatementLifetime)
	}
	return nil
}
