package attest

import (
	"errors"
	"fmt"
)

// Check names the verification step that rejected evidence. Its string is the
// word the CLI prints and scripts match on.
type Check string

// The checks, in the words documented for `chatmcp attest verify`.
const (
	CheckMalformed   Check = "malformed"
	CheckSignature   Check = "signature"
	CheckCertificate Check = "certificate"
	CheckExpired     Check = "expired"
	CheckReportData  Check = "report data"
	CheckMeasurement Check = "measurement"
	CheckDebug       Check = "debug"
	CheckVMPL        Check = "vmpl"
	CheckTCB         Check = "tcb"
	CheckNotAllowed  Check = "not allowed"
)

// Invalid reports whether a failure of c means the evidence itself is invalid
// (malformed, badly signed, badly chained or out of its validity window), as
// opposed to valid evidence that the policy rejects.
func (c Check) Invalid() bool {
	switch c {
	case CheckMalformed, CheckSignature, CheckCertificate, CheckExpired:
		return true
	}
	return false
}

// Error is a rejection of evidence. Msg says what was wrong in words a person
// can act on (it already includes Err's text); Err, when set, is the
// underlying cause, kept for errors.Is and errors.As.
type Error struct {
	Check Check
	Msg   string
	Err   error
}

func (e *Error) Error() string { return string(e.Check) + ": " + e.Msg }

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error for check. A %w verb in format sets Err.
func Errorf(check Check, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Check: check, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// CheckOf returns the Check of the first *Error in err's chain, and false when
// there is none.
func CheckOf(err error) (Check, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Check, true
	}
	return "", false
}
