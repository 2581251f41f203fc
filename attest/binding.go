package attest

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
)

// ReportDataSize is the size of the report-data field ChatMCP binds into
// evidence: SEV-SNP and TDX carry exactly 64 bytes, and the other TEEs carry
// at least as much.
const ReportDataSize = 64

// MaxTagLen caps a domain tag.
const MaxTagLen = 64

// Domain tags: every use of report data has its own, so evidence produced
// for one protocol can never be replayed into another.
const (
	TagRATLS   = "chatmcp/ratls/v1"
	TagKBS     = "chatmcp/kbs/v1"
	TagGateway = "chatmcp/gateway/v1"
	TagNonce   = "chatmcp/attestation-nonce/v1"
)

// BindReportData returns SHA-512 over a domain tag and parts, in a framing
// where no two distinct inputs give the same bytes:
//
//	u16be(len(tag)) || tag || for each part: u32be(len(part)) || part
//
// The length prefixes make the encoding injective, so ("ab","c") and
// ("a","bc") bind differently. An empty or over-long tag is a programming
// error and is reported, never truncated.
func BindReportData(tag string, parts ...[]byte) ([ReportDataSize]byte, error) {
	var out [ReportDataSize]byte
	if tag == "" || len(tag) > MaxTagLen {
		return out, fmt.Errorf("report data: domain tag length %d not in 1..%d", len(tag), MaxTagLen)
	}
	h := sha512.New()
	var n [4]byte
	binary.BigEndian.PutUint16(n[:2], uint16(len(tag)))
	h.Write(n[:2])
	h.Write([]byte(tag))
	for _, p := range parts {
		if uint64(len(p)) > 1<<31 {
			return out, fmt.Errorf("report data: part of %d bytes is too long", len(p))
		}
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	copy(out[:], h.Sum(nil))
	return out, nil
}

// PadReportData zero-pads b to size bytes. Input longer than size is an error:
// report data is never truncated, because a truncated binding binds less than
// the caller asked for.
func PadReportData(b []byte, size int) ([]byte, error) {
	if len(b) > size {
		return nil, Errorf(CheckReportData, "expected report data is %d bytes, longer than the TEE's %d", len(b), size)
	}
	out := make([]byte, size)
	copy(out, b)
	return out, nil
}
