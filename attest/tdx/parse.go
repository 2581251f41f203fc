package tdx

import (
	"encoding/binary"
	"fmt"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
)

// Offsets in a version 4 quote (Intel TDX DCAP Quoting Library API,
// "Quote Format"): a 48-byte header, a 584-byte TD quote body, then the
// 4-byte length of the signature data that follows.
const (
	headerSize     = 48
	bodySize       = 584
	signedSizeOff  = headerSize + bodySize
	signedDataOff  = signedSizeOff + 4
	quoteVersion4  = 4
	teeTypeTDX     = 0x81
	minQuoteLength = signedDataOff
)

// Quote is a parsed TDX quote. Parsing checks only its format; nothing in it
// is trusted until Verify has checked it.
type Quote struct {
	// Raw is the quote as received, without trailing zero padding.
	Raw []byte
	// Proto is go-tdx-guest's decoding of Raw.
	Proto *pb.QuoteV4
}

// ParseQuote decodes a version 4 TDX quote strictly: the header must say
// version 4, TEE type TDX and an ECDSA P-256 attestation key, every section
// must have its specified size, and the signature data must fit. Bytes after
// the signature data are accepted only when all zero (quote buffers come
// zero-padded from the quote generation service). Every error is an
// *attest.Error with Check malformed.
func ParseQuote(b []byte) (*Quote, error) {
	if len(b) > attest.MaxEvidenceSize {
		return nil, attest.Errorf(attest.CheckMalformed, "TDX quote of %d bytes exceeds the %d-byte limit", len(b), attest.MaxEvidenceSize)
	}
	if len(b) < minQuoteLength {
		return nil, attest.Errorf(attest.CheckMalformed, "TDX quote is %d bytes, shorter than a header and TD quote body (%d)", len(b), minQuoteLength)
	}
	if v := binary.LittleEndian.Uint16(b[0:2]); v != quoteVersion4 {
		return nil, attest.Errorf(attest.CheckMalformed, "TDX quote version %d, want %d", v, quoteVersion4)
	}
	if tee := binary.LittleEndian.Uint32(b[4:8]); tee != teeTypeTDX {
		return nil, attest.Errorf(attest.CheckMalformed, "quote TEE type %#x is not TDX (%#x)", tee, teeTypeTDX)
	}
	end := uint64(signedDataOff) + uint64(binary.LittleEndian.Uint32(b[signedSizeOff:signedDataOff]))
	if end > uint64(len(b)) {
		return nil, attest.Errorf(attest.CheckMalformed, "TDX quote signature data runs %d bytes past the end", end-uint64(len(b)))
	}
	for i := end; i < uint64(len(b)); i++ {
		if b[i] != 0 {
			return nil, attest.Errorf(attest.CheckMalformed, "TDX quote has %d bytes of trailing data after its signature data", uint64(len(b))-end)
		}
	}
	raw := make([]byte, end)
	copy(raw, b)
	q, err := quoteToProto(raw)
	if err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "TDX quote: %w", err)
	}
	return &Quote{Raw: raw, Proto: q}, nil
}

// quoteToProto runs go-tdx-guest's decoder, turning a panic on input it did
// not expect into an error: the decoder reads nested length fields, and a
// parser of untrusted bytes must fail closed, never crash the process.
func quoteToProto(raw []byte) (q *pb.QuoteV4, err error) {
	defer func() {
		if r := recover(); r != nil {
			q, err = nil, fmt.Errorf("decoder rejected the quote: %v", r)
		}
	}()
	v, err := abi.QuoteToProto(raw)
	if err != nil {
		return nil, err
	}
	q, ok := v.(*pb.QuoteV4)
	if !ok {
		return nil, fmt.Errorf("unsupported quote type %T", v)
	}
	return q, nil
}
