package attest

import (
	"context"
	"fmt"
	"time"
)

// Checker runs the whole pipeline for a set of verifiers: allow list,
// verification, policy. It holds no mutable state and is safe for
// concurrent use.
type Checker struct {
	verifiers map[TEE]Verifier
}

// NewChecker returns a Checker that dispatches to vs by TEE type. Passing
// two verifiers for one TEE is a programming error and panics.
func NewChecker(vs ...Verifier) *Checker {
	c := &Checker{verifiers: make(map[TEE]Verifier, len(vs))}
	for _, v := range vs {
		if _, dup := c.verifiers[v.TEE()]; dup {
			panic(fmt.Sprintf("attest: two verifiers for %s", v.TEE()))
		}
		c.verifiers[v.TEE()] = v
	}
	return c
}

// CheckOptions are the caller's inputs to Check.
type CheckOptions struct {
	// Now is the verification time for certificates, timestamps and age.
	// If zero, time.Now().
	Now time.Time
	// ReportData is the expected report data. If nil, not checked.
	ReportData []byte
	// Warn receives policy warnings. If nil, they are dropped.
	Warn func(msg string)
}

// Check verifies ev and evaluates p over its claims. The policy's allow list
// is consulted before any vendor parser sees the bytes. It returns the claims
// only when everything passed; every error is an *Error.
func (c *Checker) Check(ctx context.Context, ev *Evidence, p *Policy, opts *CheckOptions) (*Claims, error) {
	if opts == nil {
		opts = &CheckOptions{}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if ev == nil {
		return nil, Errorf(CheckMalformed, "no evidence")
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	if !p.Allows(ev.TEE) {
		return nil, Errorf(CheckNotAllowed, "TEE type %s is not allowed by the policy", ev.TEE)
	}
	v, ok := c.verifiers[ev.TEE]
	if !ok {
		return nil, Errorf(CheckNotAllowed, "no verifier for TEE type %s is configured", ev.TEE)
	}
	claims, err := v.Verify(ctx, ev, &VerifyOptions{Now: now})
	if err != nil {
		if _, ok := CheckOf(err); !ok {
			err = Errorf(CheckMalformed, "%s verifier: %w", ev.TEE, err)
		}
		return nil, err
	}
	if claims == nil {
		// A verifier bug must not read as acceptance.
		return nil, Errorf(CheckMalformed, "%s verifier returned no claims", ev.TEE)
	}
	if claims.TEE != ev.TEE {
		return nil, Errorf(CheckMalformed, "%s verifier returned %s claims", ev.TEE, claims.TEE)
	}
	if err := p.Evaluate(claims, &EvalOptions{Now: now, ReportData: opts.ReportData, Warn: opts.Warn}); err != nil {
		return nil, err
	}
	return claims, nil
}
