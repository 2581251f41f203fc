package captoken

import (
	"context"
	"testing"
	"time"
)

func TestParseBudget(t *testing.T) {
	b, err := ParseBudget("5000000/24h")
	if err != nil || b.Amount != 5000000 || b.Period != 24*time.Hour || b.String() != "5000000/24h0m0s" {
		t.Fatalf("ParseBudget = %+v, %v", b, err)
	}
	for _, bad := range []string{"", "5", "0/24h", "-1/24h", "5/0s", "5/1.5s", "5/9000h", "x/1h", "5/1y", "9223372036854775808/1h"} {
		if _, err := ParseBudget(bad); err == nil {
			t.Errorf("ParseBudget(%q) accepted", bad)
		}
	}
}

// TestBudgetCaveat: a budget caveat round-trips through the encoding and
// the MAC chain, and every token derived from the budgeted prefix shares
// its scope, so attenuating again cannot mint a fresh budget.
func TestBudgetCaveat(t *testing.T) {
	key := testKey(t)
	root, err := Mint(key, Claims{Audience: "signer", Tools: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Attenuate(root, Caveat{Budget: &Budget{Amount: 0, Period: time.Hour}}); err == nil {
		t.Error("zero budget accepted")
	}
	budgeted, err := Attenuate(root, Caveat{Budget: &Budget{Amount: 5, Period: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	child1, err := Attenuate(budgeted, Caveat{Tools: []string{"sign_transaction"}})
	if err != nil {
		t.Fatal(err)
	}
	child2, err := Attenuate(budgeted, Caveat{Budget: &Budget{Amount: 2, Period: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Key: key, Audience: "signer", Revocations: NoRevocations{}}
	var scopes []string
	for _, tok := range []string{budgeted, child1, child2} {
		vt, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		bs := vt.Budgets()
		if len(bs) == 0 || bs[0].Amount != 5 || bs[0].Period != time.Hour {
			t.Fatalf("Budgets = %+v", bs)
		}
		scopes = append(scopes, bs[0].Scope)
		if tok == child2 && (len(bs) != 2 || bs[1].Amount != 2 || bs[1].Scope == bs[0].Scope) {
			t.Fatalf("child2 Budgets = %+v", bs)
		}
	}
	if scopes[0] != scopes[1] || scopes[0] != scopes[2] {
		t.Errorf("derived tokens have different budget scopes: %v", scopes)
	}
	rv, _ := v.Verify(context.Background(), root)
	if len(rv.Budgets()) != 0 {
		t.Error("root token has a budget")
	}
}
