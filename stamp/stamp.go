// Package stamp defines the postage a sender attaches to a message for a
// recipient who has not allowed them: a proof of work today (SHA-256
// hashcash), a payment (x402) when configured later. It is shared by the
// chat client, which mints stamps, and the relay, which checks them; it is
// a root package so the relay links no client code (the format belongs to
// both sides, the minting policy and the checking policy to neither).
package stamp

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/wallet"
)

// Kinds of stamp.
const (
	// KindPoW is SHA-256 hashcash over the Input.
	KindPoW = "pow-sha256"
	// KindX402 is a payment under the x402 protocol: Proof is the JSON of
	// an x402.PaymentPayload whose memo binds the Input (Memo); the relay
	// accepts it only with a Payment verifier configured.
	KindX402 = "x402"
)

// DefaultBits is the proof-of-work difficulty when a recipient chose none:
// about 0.7 s of one core at the 11.4 million SHA-256 hashes per second
// measured on the development machine (2^23 hashes expected)
// (docs/messaging.md).
const DefaultBits = 23

// MaxBits bounds the difficulty a recipient may ask for.
const MaxBits = 40

// MaxStamp bounds an encoded stamp.
const MaxStamp = 4096

// Sentinel errors a Verifier returns (wrapped).
var (
	ErrBelowDifficulty = errors.New("stamp below the recipient's difficulty")
	ErrUnknownKind     = errors.New("unknown stamp kind")
	ErrMalformed       = errors.New("malformed stamp")
)

// Stamp is postage for one message to one recipient.
type Stamp struct {
	Kind  string `json:"kind"`
	Proof []byte `json:"proof"` // for KindPoW: an 8-byte big-endian counter
}

// Input is what a stamp is bound to: one message from one sender to one
// recipient, so it cannot be reused.
type Input struct {
	Recipient wallet.Address
	Sender    wallet.Address
	Message   [32]byte // the envelope's Hash
}

// Requirement is what a recipient asks of strangers.
type Requirement struct {
	// Bits is the proof-of-work difficulty in leading zero bits.
	Bits int
	// Price, if set, is what a payment stamp must pay. If nil, the
	// recipient takes no payment.
	Price *Price
}

// Verifier checks one kind of stamp. Payment kinds plug in here.
type Verifier interface {
	Verify(ctx context.Context, s *Stamp, in Input, req Requirement) error
}

// Parse decodes a stamp strictly.
func Parse(data []byte) (*Stamp, error) {
	if len(data) > MaxStamp {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxStamp)
	}
	var s Stamp
	if err := wire.Decode(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks the stamp's shape.
func (s *Stamp) Validate() error {
	switch s.Kind {
	case KindPoW:
		if len(s.Proof) != 8 {
			return fmt.Errorf("%w: proof-of-work counter is %d bytes, want 8", ErrMalformed, len(s.Proof))
		}
	case KindX402:
		if len(s.Proof) == 0 || len(s.Proof) > MaxStamp {
			return fmt.Errorf("%w: empty x402 payment", ErrMalformed)
		}
	default:
		return fmt.Errorf("%w %q", ErrUnknownKind, s.Kind)
	}
	return nil
}

func challenge(in Input) [32]byte {
	h := sha256.New()
	h.Write([]byte("chatmcp/stamp/pow/v1\x00"))
	h.Write(in.Recipient.PublicKey())
	h.Write(in.Sender.PublicKey())
	h.Write(in.Message[:])
	var c [32]byte
	h.Sum(c[:0])
	return c
}

// work returns the leading zero bits of SHA-256(challenge || counter).
func work(c *[32]byte, counter uint64) int {
	var buf [40]byte
	copy(buf[:], c[:])
	binary.BigEndian.PutUint64(buf[32:], counter)
	sum := sha256.Sum256(buf[:])
	n := 0
	for i := 0; i < len(sum); i += 8 {
		w := binary.BigEndian.Uint64(sum[i:])
		n += bits.LeadingZeros64(w)
		if w != 0 {
			break
		}
	}
	return n
}

// Mint finds a proof of work of at least bitsWanted leading zero bits. It
// takes about 2^bitsWanted hashes and stops when ctx is done.
func Mint(ctx context.Context, in Input, bitsWanted int) (*Stamp, error) {
	if bitsWanted < 0 || bitsWanted > MaxBits {
		return nil, fmt.Errorf("minting stamp: difficulty %d out of range 0-%d", bitsWanted, MaxBits)
	}
	c := challenge(in)
	for counter := uint64(0); ; counter++ {
		if counter&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("minting stamp: %w", err)
			}
		}
		if work(&c, counter) >= bitsWanted {
			p := make([]byte, 8)
			binary.BigEndian.PutUint64(p, counter)
			return &Stamp{Kind: KindPoW, Proof: p}, nil
		}
	}
}

// PoW verifies proof-of-work stamps.
type PoW struct{}

// Verify checks that s carries at least req.Bits of work over in.
func (PoW) Verify(_ context.Context, s *Stamp, in Input, req Requirement) error {
	if s.Kind != KindPoW {
		return fmt.Errorf("%w %q", ErrUnknownKind, s.Kind)
	}
	if err := s.Validate(); err != nil {
		return err
	}
	c := challenge(in)
	if got := work(&c, binary.BigEndian.Uint64(s.Proof)); got < req.Bits {
		return fmt.Errorf("%w: %d bits of work, %d required", ErrBelowDifficulty, got, req.Bits)
	}
	return nil
}
