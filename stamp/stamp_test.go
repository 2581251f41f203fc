package stamp

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/chatmcp/chatmcp/wallet"
)

func input(t testing.TB) Input {
	a, _ := wallet.Generate(rand.Reader)
	b, _ := wallet.Generate(rand.Reader)
	return Input{Recipient: a.Address(), Sender: b.Address(), Message: [32]byte{1, 2, 3}}
}

func TestMintVerify(t *testing.T) {
	ctx := context.Background()
	in := input(t)
	s, err := Mint(ctx, in, 12)
	if err != nil {
		t.Fatal(err)
	}
	if err := (PoW{}).Verify(ctx, s, in, Requirement{Bits: 12}); err != nil {
		t.Fatalf("valid stamp: %v", err)
	}
	other := in
	other.Message[0] ^= 1
	swapped := Input{Recipient: in.Sender, Sender: in.Recipient, Message: in.Message}
	tests := []struct {
		name string
		s    *Stamp
		in   Input
		req  int
		want error
	}{
		{"below difficulty", s, in, 40, ErrBelowDifficulty},
		{"other message", s, other, 12, ErrBelowDifficulty},
		{"swapped parties", s, swapped, 12, ErrBelowDifficulty},
		{"short proof", &Stamp{Kind: KindPoW, Proof: []byte{1}}, in, 1, ErrMalformed},
		{"x402 not verifiable by PoW", &Stamp{Kind: KindX402, Proof: []byte{1}}, in, 1, ErrUnknownKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (PoW{}).Verify(ctx, tt.s, tt.in, Requirement{Bits: tt.req})
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMintCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Mint(ctx, input(t), 40); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want canceled", err)
	}
	if _, err := Mint(context.Background(), input(t), 41); err == nil {
		t.Fatal("difficulty above MaxBits accepted")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{`{"kind":"pow-sha256","proof":"AAAAAAAAAAE="}`, nil},
		{`{"kind":"pow-sha256","proof":"AAE="}`, ErrMalformed},
		{`{"kind":"gold","proof":"AAAAAAAAAAE="}`, ErrUnknownKind},
		{`{"kind":"pow-sha256","proof":"AAAAAAAAAAE=","extra":1}`, ErrMalformed},
		{`{"kind":"pow-sha256","kind":"x402","proof":"AA=="}`, ErrMalformed},
		{`[]`, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"kind":"pow-sha256","proof":"AAAAAAAAAAE="}`))
	f.Add([]byte(`{"kind":"x402","proof":"eyJ4IjoxfQ=="}`))
	in := Input{}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed stamp fails Validate: %v", err)
		}
		(PoW{}).Verify(context.Background(), s, in, Requirement{Bits: 8})
	})
}

func BenchmarkHash(b *testing.B) {
	var c [32]byte
	for i := 0; b.Loop(); i++ {
		work(&c, uint64(i))
	}
}
