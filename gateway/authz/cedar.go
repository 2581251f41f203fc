package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// MaxPolicySize caps a Cedar policy file.
const MaxPolicySize = 1 << 20

// The Cedar vocabulary the gateway uses (docs/gateway.md):
//
//	principal: Subject::"<token subject, or token:<id>>"
//	action:    Action::"call" or Action::"skip_confirmation"
//	resource:  Tool::"<exposed tool name>"
//	context:   {arguments: {...}, upstream: "<name>", read_only: bool}
const (
	ActionCall             = "call"
	ActionSkipConfirmation = "skip_confirmation"
)

// Policy is a parsed Cedar policy set. A nil *Policy permits every call
// the token allows and exempts nothing from confirmation.
type Policy struct {
	set *cedar.PolicySet
}

// LoadPolicy reads and parses a Cedar policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading cedar policy: %w", err)
	}
	return ParsePolicy(path, b)
}

// ParsePolicy parses Cedar policy text.
func ParsePolicy(name string, b []byte) (*Policy, error) {
	if len(b) > MaxPolicySize {
		return nil, fmt.Errorf("cedar policy %s: larger than %d bytes", name, MaxPolicySize)
	}
	ps, err := cedar.NewPolicySetFromBytes(name, b)
	if err != nil {
		return nil, fmt.Errorf("parsing cedar policy %s: %w", name, err)
	}
	return &Policy{set: ps}, nil
}

// Call describes one tool call for Cedar.
type Call struct {
	Principal string
	Tool      string
	Upstream  string
	ReadOnly  bool
	// Arguments are the call's arguments as decoded JSON (UseNumber).
	Arguments map[string]any
}

// Allow reports whether the policy permits action for c, and why not.
// Forbid wins over permit; no matching permit denies; any evaluation error
// (including arguments Cedar cannot represent) denies.
func (p *Policy) Allow(action string, c *Call) (bool, string) {
	if p == nil {
		if action == ActionCall {
			return true, ""
		}
		return false, "no policy"
	}
	args, err := toRecord(c.Arguments, 0)
	if err != nil {
		return false, "cedar: arguments: " + err.Error()
	}
	req := cedar.Request{
		Principal: types.NewEntityUID("Subject", types.String(c.Principal)),
		Action:    types.NewEntityUID("Action", types.String(action)),
		Resource:  types.NewEntityUID("Tool", types.String(c.Tool)),
		Context: types.NewRecord(types.RecordMap{
			"arguments": args,
			"upstream":  types.String(c.Upstream),
			"read_only": types.Boolean(c.ReadOnly),
		}),
	}
	dec, diag := p.set.IsAuthorized(types.EntityMap{}, req)
	if len(diag.Errors) > 0 {
		return false, fmt.Sprintf("cedar: evaluation error in %s", diag.Errors[0].PolicyID)
	}
	if dec != types.Allow {
		for _, r := range diag.Reasons {
			return false, fmt.Sprintf("cedar: forbidden by %s", r.PolicyID)
		}
		return false, "cedar: no policy permits it"
	}
	return true, ""
}

// maxDepth bounds argument nesting converted to Cedar.
const maxDepth = 32

func toRecord(m map[string]any, depth int) (types.Record, error) {
	rm := make(types.RecordMap, len(m))
	for k, v := range m {
		cv, err := toValue(v, depth+1)
		if err != nil {
			return types.Record{}, fmt.Errorf("%s: %w", k, err)
		}
		rm[types.String(k)] = cv
	}
	return types.NewRecord(rm), nil
}

func toValue(v any, depth int) (types.Value, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deeply")
	}
	switch x := v.(type) {
	case string:
		return types.String(x), nil
	case bool:
		return types.Boolean(x), nil
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return types.Long(n), nil
		}
		d, err := types.ParseDecimal(x.String())
		if err != nil {
			return nil, fmt.Errorf("number %s not representable in cedar", x)
		}
		return d, nil
	case float64:
		if x == float64(int64(x)) {
			return types.Long(int64(x)), nil
		}
		return nil, fmt.Errorf("number %v not representable in cedar", x)
	case map[string]any:
		return toRecord(x, depth)
	case []any:
		vals := make([]types.Value, 0, len(x))
		for _, e := range x {
			cv, err := toValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			vals = append(vals, cv)
		}
		return types.NewSet(vals...), nil
	case nil:
		return nil, errors.New("null not representable in cedar")
	default:
		return nil, fmt.Errorf("unsupported value %T", v)
	}
}
