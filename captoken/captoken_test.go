package captoken

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

const aud = "chatmcp-gateway:test"

// revList is a real in-memory revocation list.
type revList struct {
	ids map[string]bool
	err error
}

func (r *revList) IsRevoked(_ context.Context, id string) (bool, error) {
	return r.ids[id], r.err
}

func testKey(t testing.TB) *Key {
	t.Helper()
	k, err := KeyFromBytes([]byte(strings.Repeat("k", KeySize)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mint(t testing.TB, k *Key, tools ...string) string {
	t.Helper()
	tok, err := Mint(k, Claims{ID: "00112233445566778899aabbccddeeff", Audience: aud, Subject: "alice", Tools: tools, Expires: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func attenuate(t testing.TB, tok string, c Caveat) string {
	t.Helper()
	out, err := Attenuate(tok, c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func verifier(k *Key) *Verifier {
	return &Verifier{Key: k, Audience: aud, Revocations: &revList{}, Now: func() time.Time { return t0 }}
}

// rawOf returns the binary encoding of a token string.
func rawOf(t testing.TB, tok string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, Prefix))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tokOf(raw []byte) string { return Prefix + base64.RawURLEncoding.EncodeToString(raw) }

func TestVerifyAccepts(t *testing.T) {
	k := testKey(t)
	root := mint(t, k, "fs_*", "everything_echo")
	narrow := attenuate(t, root, Caveat{Tools: []string{"fs_read_*"}, Expires: t0.Add(10 * time.Minute)})
	args := attenuate(t, root, Caveat{Args: []ArgConstraint{{Tool: "fs_*", Arg: "path", Values: []string{"/srv/public/*"}}}})
	tests := []struct {
		name    string
		token   string
		allowed []string
		denied  []string
		expires time.Time
	}{
		{"root", root, []string{"fs_read_file", "fs_write_file", "everything_echo"}, []string{"everything_printEnv", "fs"}, t0.Add(time.Hour)},
		{"narrowed", narrow, []string{"fs_read_file"}, []string{"fs_write_file", "everything_echo"}, t0.Add(10 * time.Minute)},
		{"args only", args, []string{"fs_read_file", "everything_echo"}, []string{"other"}, t0.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := verifier(k).Verify(context.Background(), tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if v.ID != "00112233445566778899aabbccddeeff" || v.Subject != "alice" {
				t.Errorf("ID, Subject = %q, %q", v.ID, v.Subject)
			}
			if !v.Expires.Equal(tt.expires) {
				t.Errorf("Expires = %v, want %v", v.Expires, tt.expires)
			}
			for _, tool := range tt.allowed {
				if !v.Allows(tool) {
					t.Errorf("Allows(%q) = false", tool)
				}
			}
			for _, tool := range tt.denied {
				if v.Allows(tool) {
					t.Errorf("Allows(%q) = true", tool)
				}
			}
		})
	}
}

func TestAllowsCall(t *testing.T) {
	k := testKey(t)
	tok := attenuate(t, mint(t, k, "*"), Caveat{Args: []ArgConstraint{{Tool: "fs_*", Arg: "path", Values: []string{"/srv/public/*", "/tmp/x"}}}})
	v, err := verifier(k).Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tool string
		args map[string]any
		want bool
	}{
		{"matching value", "fs_read_file", map[string]any{"path": "/srv/public/a.txt"}, true},
		{"second value", "fs_read_file", map[string]any{"path": "/tmp/x"}, true},
		{"star does not cross slash", "fs_read_file", map[string]any{"path": "/srv/public/sub/a.txt"}, false},
		{"other value", "fs_read_file", map[string]any{"path": "/etc/passwd"}, false},
		{"missing argument", "fs_read_file", map[string]any{}, false},
		{"non-string argument", "fs_read_file", map[string]any{"path": 3.0}, false},
		{"nil args", "fs_read_file", nil, false},
		{"unconstrained tool", "everything_echo", map[string]any{"message": "hi"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := v.AllowsCall(tt.tool, tt.args); got != tt.want {
				t.Errorf("AllowsCall(%q, %v) = %v, want %v", tt.tool, tt.args, got, tt.want)
			}
		})
	}
}

// TestAttenuationNeverWidens: whatever a caveat says, the result is at most
// the parent.
func TestAttenuationNeverWidens(t *testing.T) {
	k := testKey(t)
	root := mint(t, k, "fs_read_*")
	tests := []struct {
		name    string
		caveat  Caveat
		denied  []string
		allowed []string
		expires time.Time
	}{
		{"wider tools", Caveat{Tools: []string{"*"}}, []string{"fs_write_file", "other"}, []string{"fs_read_file"}, t0.Add(time.Hour)},
		{"disjoint tools", Caveat{Tools: []string{"fs_write_*"}}, []string{"fs_write_file", "fs_read_file"}, nil, t0.Add(time.Hour)},
		{"empty tools", Caveat{Tools: []string{}}, []string{"fs_read_file"}, nil, t0.Add(time.Hour)},
		{"later expiry", Caveat{Expires: t0.Add(100 * time.Hour)}, []string{"fs_write_file"}, []string{"fs_read_file"}, t0.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := attenuate(t, root, tt.caveat)
			v, err := verifier(k).Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			for _, tool := range tt.denied {
				if v.Allows(tool) {
					t.Errorf("Allows(%q) = true after attenuation", tool)
				}
			}
			for _, tool := range tt.allowed {
				if !v.Allows(tool) {
					t.Errorf("Allows(%q) = false", tool)
				}
			}
			if !v.Expires.Equal(tt.expires) {
				t.Errorf("Expires = %v, want %v", v.Expires, tt.expires)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	k := testKey(t)
	other, _ := KeyFromBytes([]byte(strings.Repeat("o", KeySize)))
	root := mint(t, k, "fs_read_*")
	att := attenuate(t, root, Caveat{Tools: []string{"fs_read_file"}})
	att2 := attenuate(t, att, Caveat{Expires: t0.Add(time.Minute)})
	rootRaw := rawOf(t, root)
	attRaw := rawOf(t, att)
	att2Raw := rawOf(t, att2)

	// Tampering with the root block's tools: "fs_read_*" → "fs_rea**_*" keeps
	// the length, so only the MAC can catch it.
	tampered := []byte(string(rootRaw))
	i := strings.Index(string(tampered), "fs_read_*")
	copy(tampered[i:], "fs_*ead_*")
	// Tampering with a caveat: "fs_read_file" → "fs_*________".
	tamperedCaveat := []byte(string(attRaw))
	j := strings.LastIndex(string(tamperedCaveat), "fs_read_file")
	copy(tamperedCaveat[j:], "fs_*________")
	// Removing the last caveat but keeping the final signature.
	removed := append([]byte(nil), att2Raw[:len(attRaw)-sigSize]...)
	removed[1]-- // one caveat fewer
	removed = append(removed, att2Raw[len(att2Raw)-sigSize:]...)
	bumped := append([]byte(nil), rootRaw...)
	bumped[0] = 2
	tooMany := append([]byte(nil), rootRaw...)
	tooMany[1] = MaxCaveats + 1
	badKind := append([]byte(nil), rootRaw...)
	badKind[2] = kindCaveat
	badFlags := append([]byte(nil), attRaw...)
	badFlags[len(rootRaw)-sigSize+1] |= 0x80
	zeroFlags := append([]byte(nil), attRaw[:len(rootRaw)-sigSize]...)
	zeroFlags = append(zeroFlags, kindCaveat, 0)
	zeroFlags = append(zeroFlags, attRaw[len(attRaw)-sigSize:]...)

	expired := &Verifier{Key: k, Audience: aud, Revocations: &revList{}, Now: func() time.Time { return t0.Add(time.Hour) }}
	expiredCaveat := &Verifier{Key: k, Audience: aud, Revocations: &revList{}, Now: func() time.Time { return t0.Add(2 * time.Minute) }}
	lookupErr := errors.New("database down")

	tests := []struct {
		name     string
		verifier *Verifier
		token    string
		want     error
	}{
		{"empty", verifier(k), "", ErrMalformed},
		{"no prefix", verifier(k), strings.TrimPrefix(root, Prefix), ErrMalformed},
		{"wrong prefix", verifier(k), "cmt2." + strings.TrimPrefix(root, Prefix), ErrMalformed},
		{"bad base64", verifier(k), root[:len(root)-3] + "!!!", ErrMalformed},
		{"non-canonical base64", verifier(k), nonCanonicalB64(root), ErrMalformed},
		{"line break inside", verifier(k), root[:20] + "\n" + root[20:], ErrMalformed},
		{"carriage return at the end", verifier(k), root + "\r", ErrMalformed},
		{"too long", verifier(k), Prefix + strings.Repeat("A", MaxTokenSize), ErrMalformed},
		{"truncated", verifier(k), tokOf(rootRaw[:len(rootRaw)-1]), ErrMalformed},
		{"truncated in block", verifier(k), tokOf(rootRaw[:10]), ErrMalformed},
		{"trailing data", verifier(k), tokOf(append(append([]byte(nil), rootRaw...), 0)), ErrMalformed},
		{"unknown version", verifier(k), tokOf(bumped), ErrMalformed},
		{"too many caveats", verifier(k), tokOf(tooMany), ErrMalformed},
		{"root block kind", verifier(k), tokOf(badKind), ErrMalformed},
		{"reserved caveat flags", verifier(k), tokOf(badFlags), ErrMalformed},
		{"empty caveat", verifier(k), tokOf(zeroFlags), ErrMalformed},
		{"bad MAC", verifier(other), root, ErrSignature},
		{"flipped signature bit", verifier(k), tokOf(flipLast(rootRaw)), ErrSignature},
		{"tampered root tools", verifier(k), tokOf(tampered), ErrSignature},
		{"tampered caveat", verifier(k), tokOf(tamperedCaveat), ErrSignature},
		{"removed caveat", verifier(k), tokOf(removed), ErrSignature},
		{"wrong audience", &Verifier{Key: k, Audience: "chatmcp-gateway:other", Revocations: &revList{}, Now: func() time.Time { return t0 }}, root, ErrAudience},
		{"expired", expired, root, ErrExpired},
		{"expired by caveat", expiredCaveat, att2, ErrExpired},
		{"revoked", &Verifier{Key: k, Audience: aud, Revocations: &revList{ids: map[string]bool{"00112233445566778899aabbccddeeff": true}}, Now: func() time.Time { return t0 }}, att, ErrRevoked},
		{"revocation lookup error", &Verifier{Key: k, Audience: aud, Revocations: &revList{err: lookupErr}, Now: func() time.Time { return t0 }}, root, lookupErr},
		{"nil revocations", &Verifier{Key: k, Audience: aud, Now: func() time.Time { return t0 }}, root, nil},
		{"nil key", &Verifier{Audience: aud, Revocations: NoRevocations{}}, root, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.verifier.Verify(context.Background(), tt.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", v)
			}
			if v != nil {
				t.Errorf("Verify returned a token with an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.want == lookupErr && errors.Is(err, ErrRevoked) {
				t.Errorf("lookup failure reported as a revocation: %v", err)
			}
		})
	}
}

func flipLast(raw []byte) []byte {
	out := append([]byte(nil), raw...)
	out[len(out)-1] ^= 1
	return out
}

// nonCanonicalB64 sets a padding bit in the last base64 character. Root
// tokens are long enough that the final group is partial.
func nonCanonicalB64(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[last|1])
}

func TestMintRejects(t *testing.T) {
	k := testKey(t)
	ok := Claims{Audience: aud, Tools: []string{"*"}, Expires: t0}
	tests := []struct {
		name string
		key  *Key
		edit func(*Claims)
	}{
		{"nil key", nil, func(*Claims) {}},
		{"no audience", k, func(c *Claims) { c.Audience = "" }},
		{"no tools", k, func(c *Claims) { c.Tools = nil }},
		{"bad pattern", k, func(c *Claims) { c.Tools = []string{"fs_["} }},
		{"empty pattern", k, func(c *Claims) { c.Tools = []string{""} }},
		{"no expiry", k, func(c *Claims) { c.Expires = time.Time{} }},
		{"bad id", k, func(c *Claims) { c.ID = "XYZ" }},
		{"upper-case id", k, func(c *Claims) { c.ID = "00112233445566778899AABBCCDDEEFF" }},
		{"long subject", k, func(c *Claims) { c.Subject = strings.Repeat("s", MaxStringLen+1) }},
		{"too many tools", k, func(c *Claims) { c.Tools = make([]string, MaxPatterns+1); fill(c.Tools) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			if tok, err := Mint(tt.key, c); err == nil {
				t.Fatalf("Mint succeeded: %s", tok)
			}
		})
	}
}

func fill(s []string) {
	for i := range s {
		s[i] = "x"
	}
}

func TestAttenuateRejects(t *testing.T) {
	k := testKey(t)
	root := mint(t, k, "*")
	full := root
	for range MaxCaveats {
		full = attenuate(t, full, Caveat{Tools: []string{"*"}})
	}
	tests := []struct {
		name   string
		token  string
		caveat Caveat
	}{
		{"malformed token", "cmt1.xx", Caveat{Tools: []string{"*"}}},
		{"empty caveat", root, Caveat{}},
		{"empty args", root, Caveat{Args: []ArgConstraint{}}},
		{"bad pattern", root, Caveat{Tools: []string{"["}}},
		{"arg without name", root, Caveat{Args: []ArgConstraint{{Tool: "*", Values: []string{"x"}}}}},
		{"arg without values", root, Caveat{Args: []ArgConstraint{{Tool: "*", Arg: "p"}}}},
		{"too many caveats", full, Caveat{Tools: []string{"*"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := Attenuate(tt.token, tt.caveat); err == nil {
				t.Fatalf("Attenuate succeeded: %s", tok)
			}
		})
	}
}

func TestParse(t *testing.T) {
	k := testKey(t)
	tok := attenuate(t, mint(t, k, "fs_*"), Caveat{Expires: t0.Add(time.Minute)})
	p, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "00112233445566778899aabbccddeeff" || !p.Expires.Equal(t0.Add(time.Minute)) || len(p.Blocks) != 2 {
		t.Errorf("Parse = %+v", p)
	}
	if _, err := Parse("cmt1."); !errors.Is(err, ErrMalformed) {
		t.Errorf("Parse(empty body) err = %v, want ErrMalformed", err)
	}
}

func TestMintRandomID(t *testing.T) {
	k := testKey(t)
	a, _ := Mint(k, Claims{Audience: aud, Tools: []string{"*"}, Expires: t0})
	b, _ := Mint(k, Claims{Audience: aud, Tools: []string{"*"}, Expires: t0})
	pa, _ := Parse(a)
	pb, _ := Parse(b)
	if pa == nil || pb == nil || pa.ID == pb.ID || len(pa.ID) != 32 {
		t.Fatalf("ids %+v %+v", pa, pb)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token.key")
	k1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if k1.k != k2.k || k1.Fingerprint() != k2.Fingerprint() {
		t.Error("reloaded key differs")
	}
	bad := filepath.Join(dir, "bad.key")
	for _, content := range []string{"short\n", strings.Repeat("zz", KeySize) + "\n"} {
		os.WriteFile(bad, []byte(content), 0o600)
		if _, err := LoadOrCreateKey(bad); err == nil {
			t.Errorf("LoadOrCreateKey accepted %q", content)
		}
	}
}

func FuzzDecode(f *testing.F) {
	k := testKey(f)
	root := mint(f, k, "fs_*")
	att := attenuate(f, root, Caveat{Tools: []string{"fs_read_*"}, Expires: t0.Add(time.Minute), Args: []ArgConstraint{{Tool: "*", Arg: "p", Values: []string{"a*"}}}})
	grant := attenuate(f, att, Caveat{Tools: []string{"fs_read_x"}, Approver: "alice", Holder: "agent"})
	budgeted := attenuate(f, grant, Caveat{Budget: &Budget{Amount: 5000000, Period: 24 * time.Hour}})
	nonced := attenuate(f, budgeted, Caveat{Tools: []string{"fs_read_x"}, Nonce: []byte("0123456789abcdef")})
	seeds := map[string]bool{root: true, att: true, grant: true, budgeted: true, nonced: true}
	f.Add(nonced)
	f.Add(root)
	f.Add(att)
	f.Add(grant)
	f.Add(budgeted)
	f.Add("cmt1.")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := decode(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		// Canonical: a decoded token re-encodes to exactly its input.
		if got := encodeToken(d.blocks, d.sig); got != s {
			t.Fatalf("re-encoding differs:\n got %q\nwant %q", got, s)
		}
		// Only the seeds were made with the key; any other accepted input
		// would be a forgery.
		if _, err := verifier(k).Verify(context.Background(), s); err == nil && !seeds[s] {
			t.Fatalf("forged token verified: %q", s)
		}
	})
}

// TestChainID: a token and its attenuations share the root id but not the
// chain id; the same chain parsed twice has one chain id.
func TestChainID(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	root, err := Mint(key, Claims{Audience: "a", Tools: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	child, err := Attenuate(root, Caveat{Tools: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	sibling, err := Attenuate(root, Caveat{Tools: []string{"y"}})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for name, tok := range map[string]string{"root": root, "child": child, "sibling": sibling} {
		v, err := Parse(tok)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Parse(tok)
		if v.ChainID() != again.ChainID() || len(v.ChainID()) != 64 {
			t.Fatalf("%s: chain id %q unstable or malformed", name, v.ChainID())
		}
		for other, id := range ids {
			if id == v.ChainID() {
				t.Fatalf("%s and %s share chain id %s", name, other, id)
			}
		}
		ids[name] = v.ChainID()
	}
}

// TestApproverHolder: the approver and holder caveats round-trip, are
// covered by the MAC, may be repeated but never replaced, and a chain
// naming two different ones does not decode.
func TestApproverHolder(t *testing.T) {
	k := testKey(t)
	root := mint(t, k, "notes_*")
	grant := attenuate(t, root, Caveat{Tools: []string{"notes_list"}, Approver: "alice", Holder: "agent"})
	v, err := verifier(k).Verify(context.Background(), grant)
	if err != nil {
		t.Fatal(err)
	}
	if v.Approver != "alice" || v.Holder != "agent" {
		t.Fatalf("approver %q holder %q, want alice and agent", v.Approver, v.Holder)
	}
	if !v.Allows("notes_list") || v.Allows("notes_write") {
		t.Error("the grant's tools are not the caveat's")
	}
	// Repeating the same names changes nothing.
	same := attenuate(t, grant, Caveat{Approver: "alice", Holder: "agent"})
	if v, err := verifier(k).Verify(context.Background(), same); err != nil || v.Approver != "alice" {
		t.Fatalf("repeated approver: %v, %+v", err, v)
	}
	// The holder cannot name itself (or anyone else) approver.
	for _, c := range []Caveat{{Approver: "agent"}, {Holder: "mallory"}} {
		if _, err := Attenuate(grant, c); err == nil || !strings.Contains(err.Error(), "different") {
			t.Errorf("Attenuate(%+v) = %v, want a refusal naming different approvers or holders", c, err)
		}
	}
	// Forged the other way: encode the second approver by hand.
	raw := rawOf(t, grant)
	d, err := decode(grant)
	if err != nil {
		t.Fatal(err)
	}
	extra := Block{Approver: "agent"}
	body := append([]byte{}, raw[:len(raw)-sigSize]...)
	body[1]++
	body = append(body, encodeCaveat(&extra)...)
	sig := chainMAC(d.sig, encodeCaveat(&extra))
	forged := tokOf(append(body, sig[:]...))
	if _, err := verifier(k).Verify(context.Background(), forged); !errors.Is(err, ErrMalformed) {
		t.Errorf("a chain with two approvers: %v, want ErrMalformed", err)
	}
	// An approver caveat on its own still verifies: it restricts who approves.
	only := attenuate(t, root, Caveat{Approver: "alice"})
	if _, err := verifier(k).Verify(context.Background(), only); err != nil {
		t.Errorf("approver-only caveat: %v", err)
	}
	// A changed approver byte breaks the MAC.
	tampered := strings.Replace(string(rawOf(t, grant)), "alice", "alicf", 1)
	if _, err := verifier(k).Verify(context.Background(), tokOf([]byte(tampered))); !errors.Is(err, ErrSignature) {
		t.Errorf("tampered approver: %v, want ErrSignature", err)
	}
	// Empty names are refused on the wire.
	empty := append([]byte{}, raw[:len(raw)-sigSize]...)
	empty[1]++
	empty = append(empty, kindCaveat, flagApprover, 0, 0)
	if _, err := decode(tokOf(append(empty, make([]byte, sigSize)...))); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty approver: %v, want ErrMalformed", err)
	}
}

// TestChainRevocation: revoking a chain id revokes that token and every
// token derived from it, never its parent or a sibling.
func TestChainRevocation(t *testing.T) {
	k := testKey(t)
	root := mint(t, k, "*")
	child := attenuate(t, root, Caveat{Tools: []string{"a_*"}, Holder: "agent"})
	grandchild := attenuate(t, child, Caveat{Tools: []string{"a_b"}})
	sibling := attenuate(t, root, Caveat{Tools: []string{"a_*"}, Holder: "other"})
	pc, _ := Parse(child)
	pg, _ := Parse(grandchild)
	pr, _ := Parse(root)
	ps, _ := Parse(sibling)
	if !pg.DerivedFrom(pc) || !pg.DerivedFrom(pr) || !pc.DerivedFrom(pr) {
		t.Error("DerivedFrom misses a real derivation")
	}
	if pc.DerivedFrom(pg) || pc.DerivedFrom(pc) || ps.DerivedFrom(pc) || pr.DerivedFrom(pc) {
		t.Error("DerivedFrom accepts a parent, itself or a sibling")
	}
	if ids := pg.ChainIDs(); len(ids) != 3 || ids[0] != pr.ChainID() || ids[1] != pc.ChainID() || ids[2] != pg.ChainID() {
		t.Errorf("ChainIDs = %v", ids)
	}
	v := verifier(k)
	v.Revocations = &revList{ids: map[string]bool{pc.ChainID(): true}}
	for tok, want := range map[string]bool{root: false, child: true, grandchild: true, sibling: false} {
		_, err := v.Verify(context.Background(), tok)
		if got := errors.Is(err, ErrRevoked); got != want {
			t.Errorf("Verify(%s…): revoked = %v (%v), want %v", tok[:12], got, err, want)
		}
	}
}

// TestNonce: two caveats equal but for a fresh nonce are two tokens with
// two chain ids, so revoking one leaves the other; the nonce round-trips,
// is covered by the MAC, narrows nothing on its own and has one size.
func TestNonce(t *testing.T) {
	k := testKey(t)
	root := mint(t, k, "*")
	c := Caveat{Tools: []string{"a_*"}, Expires: t0.Add(time.Minute), Approver: "alice", Holder: "agent"}
	if attenuate(t, root, c) != attenuate(t, root, c) {
		t.Fatal("attenuation without a nonce is not deterministic (test premise)")
	}
	grant := func() string {
		n, err := NewNonce()
		if err != nil {
			t.Fatal(err)
		}
		cc := c
		cc.Nonce = n
		return attenuate(t, root, cc)
	}
	a, b := grant(), grant()
	if a == b {
		t.Fatal("two grants with fresh nonces are one token")
	}
	pa, err := Parse(a)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := Parse(b)
	if pa.ChainID() == pb.ChainID() {
		t.Fatal("two grants share a chain id")
	}
	if n := pa.Blocks[1].Nonce; len(n) != NonceSize {
		t.Fatalf("parsed nonce = %x", n)
	}
	v := verifier(k)
	v.Revocations = &revList{ids: map[string]bool{pa.ChainID(): true}}
	if _, err := v.Verify(context.Background(), a); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked grant: %v, want ErrRevoked", err)
	}
	vb, err := v.Verify(context.Background(), b)
	if err != nil {
		t.Fatalf("the other grant: %v", err)
	}
	if !vb.Allows("a_x") {
		t.Error("the nonce changed what the grant allows")
	}
	// Changing a nonce byte breaks the MAC.
	raw := rawOf(t, b)
	raw[len(raw)-sigSize-1] ^= 1
	if _, err := v.Verify(context.Background(), tokOf(raw)); err == nil {
		t.Error("a changed nonce verified")
	}
	if _, err := Attenuate(root, Caveat{Nonce: make([]byte, NonceSize)}); err == nil {
		t.Error("a nonce-only caveat was accepted")
	}
	if _, err := Attenuate(root, Caveat{Tools: []string{"a"}, Nonce: make([]byte, 8)}); err == nil {
		t.Error("an 8-byte nonce was accepted")
	}
	// A nonce-only caveat block on the wire does not decode either.
	nonceOnly := append(append([]byte{kindCaveat, flagNonce}, make([]byte, NonceSize)...), make([]byte, sigSize)...)
	rr := rawOf(t, root)
	rr = append(rr[:len(rr)-sigSize], nonceOnly...)
	rr[1] = 1
	if _, err := decode(tokOf(rr)); !errors.Is(err, ErrMalformed) {
		t.Errorf("nonce-only caveat decoded: %v", err)
	}
}
