package wallet

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeypairRoundTrip(t *testing.T) {
	k, err := Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id.json")
	if err := k.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	if err := k.WriteFile(path); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second WriteFile error = %v, want refusal", err)
	}
	k2, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k2.Address().Equal(k.Address()) {
		t.Fatal("loaded address differs")
	}
	msg := []byte("hello")
	if !k.Address().Verify(msg, k2.Sign(msg)) {
		t.Fatal("signature by loaded key does not verify")
	}
	a, err := ParseAddress(k.Address().String())
	if err != nil || !a.Equal(k.Address()) {
		t.Fatalf("ParseAddress(String()) = %v, %v", a, err)
	}
}

func TestParseKeypairRejects(t *testing.T) {
	k, _ := Generate(rand.Reader)
	good := string(k.MarshalKeypair())
	nums := strings.Split(strings.Trim(good, "[]"), ",")
	mismatch := append([]string(nil), nums...)
	if mismatch[40] == "7" {
		mismatch[40] = "8"
	} else {
		mismatch[40] = "7"
	}
	tests := []struct{ name, in, want string }{
		{"not array", `{"a":1}`, "JSON array"},
		{"too short", "[" + strings.Join(nums[:63], ",") + "]", "63 elements"},
		{"too long", "[" + strings.Join(append(nums, "1"), ",") + "]", "65 elements"},
		{"out of range", "[" + strings.Join(append([]string{"256"}, nums[1:]...), ",") + "]", "not a byte"},
		{"negative", "[" + strings.Join(append([]string{"-1"}, nums[1:]...), ",") + "]", "not a byte"},
		{"leading zero", "[" + strings.Join(append([]string{"01"}, nums[1:]...), ",") + "]", "not a byte"},
		{"public key mismatch", "[" + strings.Join(mismatch, ",") + "]", "does not match"},
		{"huge", strings.Repeat(" ", 5000), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeypair([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := ParseKeypair([]byte(" " + good + "\n")); err != nil {
		t.Fatalf("valid keypair with white space: %v", err)
	}
}

func TestParseAddressRejects(t *testing.T) {
	for _, s := range []string{"", "0OIl", "abc", strings.Repeat("1", 45), "1" + "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi"} {
		if _, err := ParseAddress(s); err == nil {
			t.Errorf("ParseAddress(%q) succeeded", s)
		}
	}
}

// A message written by the Solana wallet standard's createSignInMessageText.
const standardMessage = "example.com wants you to sign in with your Solana account:\n" +
	"4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi\n\n" +
	"Sign in to Example\n\n" +
	"URI: https://example.com/login\n" +
	"Version: 1\n" +
	"Chain ID: mainnet\n" +
	"Nonce: 32891756\n" +
	"Issued At: 2024-01-01T00:00:00.000Z\n" +
	"Expiration Time: 2024-01-01T00:10:00.000Z\n" +
	"Resources:\n" +
	"- https://example.com/a\n" +
	"- ipfs://b"

func TestParseSignInMessage(t *testing.T) {
	m, err := ParseSignInMessage(standardMessage)
	if err != nil {
		t.Fatal(err)
	}
	if m.Domain != "example.com" || m.Statement != "Sign in to Example" || m.Nonce != "32891756" ||
		m.ChainID != "mainnet" || m.Version != "1" || len(m.Resources) != 2 ||
		!m.IssuedAt.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("parsed %+v", m)
	}
	if got := m.String(); got != standardMessage {
		t.Fatalf("String() =\n%s\nwant\n%s", got, standardMessage)
	}
	minimal := "example.com wants you to sign in with your Solana account:\n4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi"
	if m, err := ParseSignInMessage(minimal); err != nil || m.String() != minimal {
		t.Fatalf("minimal: %v", err)
	}
}

func TestParseSignInMessageRejects(t *testing.T) {
	head := "example.com wants you to sign in with your Solana account:\n4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi"
	tests := []struct{ name, in, want string }{
		{"ethereum header", "example.com wants you to sign in with your Ethereum account:\n0xabc", "first line"},
		{"no address", "example.com wants you to sign in with your Solana account:", "missing address"},
		{"bad address", "example.com wants you to sign in with your Solana account:\nxyz", "invalid wallet address"},
		{"no blank line", head + "\nURI: x", "blank line after the address"},
		{"fields out of order", head + "\n\nVersion: 1\nURI: https://x", "unexpected line"},
		{"duplicate field", head + "\n\nURI: a\nURI: b", "unexpected line"},
		{"unknown field", head + "\n\nURI: x\nFoo: bar", "unexpected line"},
		{"empty value", head + "\n\nURI: ", "no value"},
		{"bad time", head + "\n\nIssued At: yesterday", "RFC 3339"},
		{"resource without dash", head + "\n\nResources:\nhttps://x", "does not start"},
		{"empty resources", head + "\n\nResources:", "empty resources"},
		{"statement then no blank", head + "\n\nhello\nURI: x", "blank line after the statement"},
		{"trailing newline", head + "\n\nURI: x\n", "unexpected line"},
		{"control character", head + "\n\nhello\x01", "control character"},
		{"empty domain", " wants you to sign in with your Solana account:\n4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi", "empty domain"},
		{"too long", head + "\n\n" + strings.Repeat("a", MaxSignInMessage), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSignInMessage(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzParseSignInMessage(f *testing.F) {
	f.Add(standardMessage)
	f.Add("a wants you to sign in with your Solana account:\n4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi\n\nURI: x")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseSignInMessage(s)
		if err != nil {
			return
		}
		// What parses re-renders to text that parses to the same message.
		m2, err := ParseSignInMessage(m.String())
		if err != nil {
			t.Fatalf("re-parsing %q: %v", m.String(), err)
		}
		if m2.String() != m.String() {
			t.Fatalf("round trip changed %q to %q", m.String(), m2.String())
		}
	})
}

func FuzzParseKeypair(f *testing.F) {
	k, _ := Generate(bytes.NewReader(make([]byte, 64)))
	f.Add(k.MarshalKeypair())
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKeypair(b)
		if err != nil {
			return
		}
		if _, err := ParseKeypair(k.MarshalKeypair()); err != nil {
			t.Fatal(err)
		}
	})
}
