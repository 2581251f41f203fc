package authz

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/store"
)

func openRevs(t *testing.T, path string) (*Revocations, *store.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenRevocations(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, db
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gw.db")
	revs, db := openRevs(t, path)
	key, _ := captoken.NewKey()
	now := time.Now()
	clk := func() time.Time { return now }
	toks := NewTokens(key, "chatmcp-gateway:x", revs, clk)
	tok, err := toks.Mint(captoken.Claims{Subject: "alice", Tools: []string{"fs_*"}, Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := toks.Verify(ctx, tok)
	if err != nil || p.Subject != "alice" || !p.Allows("fs_read") || p.Allows("gh_x") {
		t.Fatalf("verify: %+v %v", p, err)
	}
	// Cached path gives the same answer.
	if p2, err := toks.Verify(ctx, tok); err != nil || p2 != p {
		t.Fatalf("cached verify: %v", err)
	}
	// Expiry applies to cached entries.
	now = now.Add(2 * time.Hour)
	if _, err := toks.Verify(ctx, tok); !errors.Is(err, captoken.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	now = now.Add(-2 * time.Hour)
	if _, err := toks.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := toks.Revoke(ctx, p.TokenID); err != nil {
		t.Fatal(err)
	}
	if _, err := toks.Verify(ctx, tok); !errors.Is(err, captoken.ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	if err := toks.Revoke(ctx, "not-an-id"); !errors.Is(err, ErrBadID) {
		t.Fatalf("bad id: %v", err)
	}
	db.Close()
	revs2, db2 := openRevs(t, path)
	defer db2.Close()
	if r, _ := revs2.IsRevoked(ctx, p.TokenID); !r {
		t.Fatal("revocation lost on reopen")
	}
	other := NewTokens(key, "chatmcp-gateway:y", revs2, clk)
	if _, err := other.Verify(ctx, tok); !errors.Is(err, captoken.ErrAudience) && !errors.Is(err, captoken.ErrRevoked) {
		t.Fatalf("wrong audience: %v", err)
	}
}

func TestWrongAudience(t *testing.T) {
	revs, db := openRevs(t, filepath.Join(t.TempDir(), "gw.db"))
	defer db.Close()
	key, _ := captoken.NewKey()
	a := NewTokens(key, "chatmcp-gateway:a", revs, nil)
	b := NewTokens(key, "chatmcp-gateway:b", revs, nil)
	tok, _ := a.Mint(captoken.Claims{Tools: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	if _, err := b.Verify(context.Background(), tok); !errors.Is(err, captoken.ErrAudience) {
		t.Fatalf("err = %v, want ErrAudience", err)
	}
}

func args(s string) map[string]any {
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	d.Decode(&m)
	return m
}

func TestCedar(t *testing.T) {
	p, err := ParsePolicy("test.cedar", []byte(`
permit (principal, action == Action::"call", resource);
forbid (principal, action == Action::"call", resource == Tool::"fs_write_file")
  when { context.arguments.path like "/etc/*" };
forbid (principal == Subject::"mallory", action, resource);
permit (principal, action == Action::"skip_confirmation", resource)
  when { context.arguments has count && context.arguments.count < 10 };
`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, action, principal, tool, args string
		want                                bool
	}{
		{"permitted", ActionCall, "alice", "fs_write_file", `{"path":"/tmp/x"}`, true},
		{"forbidden argument", ActionCall, "alice", "fs_write_file", `{"path":"/etc/passwd"}`, false},
		{"missing argument is an error: deny", ActionCall, "alice", "fs_write_file", `{}`, false},
		{"forbidden principal", ActionCall, "mallory", "fs_read", `{}`, false},
		{"float argument", ActionCall, "alice", "fs_read", `{"x":1.5}`, true},
		{"null argument", ActionCall, "alice", "fs_read", `{"x":null}`, false},
		{"nested", ActionCall, "alice", "fs_read", `{"x":{"y":[1,"a",true]}}`, true},
		{"exempt", ActionSkipConfirmation, "alice", "fs_write_file", `{"count":3}`, true},
		{"not exempt", ActionSkipConfirmation, "alice", "fs_write_file", `{"count":30}`, false},
		{"no permit for unknown action", "other", "alice", "fs_read", `{}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, why := p.Allow(c.action, &Call{Principal: c.principal, Tool: c.tool, Arguments: args(c.args)})
			if ok != c.want {
				t.Fatalf("allow = %v (%s), want %v", ok, why, c.want)
			}
		})
	}
	var none *Policy
	if ok, _ := none.Allow(ActionCall, &Call{}); !ok {
		t.Fatal("nil policy denied a call")
	}
	if ok, _ := none.Allow(ActionSkipConfirmation, &Call{}); ok {
		t.Fatal("nil policy exempted a call")
	}
	if _, err := ParsePolicy("bad", []byte("permit (")); err == nil {
		t.Fatal("bad policy parsed")
	}
}

func TestDeepArguments(t *testing.T) {
	p, _ := ParsePolicy("p", []byte(`permit (principal, action, resource);`))
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	if ok, _ := p.Allow(ActionCall, &Call{Arguments: args(deep)}); ok {
		t.Fatal("over-deep arguments allowed")
	}
}
