package captoken

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxBudgetPeriod caps a budget caveat's period.
const MaxBudgetPeriod = 366 * 24 * time.Hour

// Budget is a spending cap: at most Amount base units (of whatever the
// verifier counts, e.g. a payment signer's mint) in any rolling Period.
// Its text form is "AMOUNT/PERIOD", e.g. "5000000/24h".
type Budget struct {
	Amount uint64
	Period time.Duration
}

// ParseBudget parses "AMOUNT/PERIOD": a positive integer and a Go duration
// of whole seconds, at most MaxBudgetPeriod.
func ParseBudget(s string) (*Budget, error) {
	a, p, ok := strings.Cut(s, "/")
	if !ok {
		return nil, fmt.Errorf("budget %q is not AMOUNT/PERIOD", s)
	}
	amount, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("budget %q: amount: %v", s, err)
	}
	period, err := time.ParseDuration(p)
	if err != nil {
		return nil, fmt.Errorf("budget %q: period: %v", s, err)
	}
	b := &Budget{Amount: amount, Period: period}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("budget %q: %v", s, err)
	}
	return b, nil
}

func (b *Budget) validate() error {
	switch {
	case b.Amount == 0 || b.Amount > math.MaxInt64:
		return fmt.Errorf("budget amount %d not in [1, %d]", b.Amount, int64(math.MaxInt64))
	case b.Period < time.Second || b.Period > MaxBudgetPeriod || b.Period%time.Second != 0:
		return errors.New("budget period is not whole seconds in [1s, 366 days]")
	}
	return nil
}

// String is the "AMOUNT/PERIOD" form.
func (b Budget) String() string { return fmt.Sprintf("%d/%s", b.Amount, b.Period) }

// ScopedBudget is one budget caveat of a chain and its scope: the chain id
// of the chain up to and including that caveat. Every token derived from
// that prefix shares the scope, so a holder who attenuates the token again
// (or many times) still draws on the same budget.
type ScopedBudget struct {
	Budget
	Scope string
}

// Budgets returns every budget caveat of the chain with its scope, in
// chain order. A verifier that moves value must keep each within its cap.
func (v *Verified) Budgets() []ScopedBudget {
	var out []ScopedBudget
	for i, b := range v.Blocks {
		if b.Budget != nil {
			out = append(out, ScopedBudget{Budget: *b.Budget, Scope: chainID(v.Blocks[:i+1])})
		}
	}
	return out
}
