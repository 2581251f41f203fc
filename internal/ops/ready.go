package ops

import (
	"context"
	"errors"
	"sync"
)

// Check is one named readiness condition. Func returns nil when ready.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// errNotYet is what a declared check that was never set reports.
var errNotYet = errors.New("not ready yet")

// Readiness is a set of named checks that /readyz runs. It is safe for
// concurrent use; the zero value has no checks and is ready.
type Readiness struct {
	mu     sync.Mutex
	checks []Check
}

// NewReadiness returns a Readiness whose named checks fail until Set
// replaces them (see Declare).
func NewReadiness(names ...string) *Readiness {
	r := &Readiness{}
	r.Declare(names...)
	return r
}

// Declare adds a failing check for each name not yet present: what a
// daemon waits for, before it starts on it. A nil Readiness ignores it.
func (r *Readiness) Declare(names ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
next:
	for _, n := range names {
		for _, c := range r.checks {
			if c.Name == n {
				continue next
			}
		}
		r.checks = append(r.checks, Check{Name: n, Func: func(context.Context) error { return errNotYet }})
	}
}

// Set adds checks, each replacing one of the same name. A nil Readiness
// ignores it.
func (r *Readiness) Set(checks ...Check) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
next:
	for _, c := range checks {
		for i := range r.checks {
			if r.checks[i].Name == c.Name {
				r.checks[i] = c
				continue next
			}
		}
		r.checks = append(r.checks, c)
	}
}

// Done sets each named check to pass from now on. A nil Readiness ignores
// it.
func (r *Readiness) Done(names ...string) {
	for _, n := range names {
		r.Set(Check{Name: n, Func: func(context.Context) error { return nil }})
	}
}

// Status is the result of one check.
type Status struct {
	Name string
	Err  error
}

// Check runs every check in order and reports whether all passed.
func (r *Readiness) Check(ctx context.Context) (ready bool, statuses []Status) {
	if r == nil {
		return true, nil
	}
	r.mu.Lock()
	checks := append([]Check(nil), r.checks...)
	r.mu.Unlock()
	ready = true
	for _, c := range checks {
		err := c.Func(ctx)
		if err != nil {
			ready = false
		}
		statuses = append(statuses, Status{Name: c.Name, Err: err})
	}
	return ready, statuses
}
