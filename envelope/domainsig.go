package envelope

import (
	"crypto/ed25519"
	"encoding/binary"
)

// MaxDomainTagLen caps the domain tag of SignDomain and VerifyDomain.
const MaxDomainTagLen = 255

// domainSigned frames msg for SignDomain: u16be(len(tag)) || tag || msg.
// The first byte is always 0x00 (tags are at most 255 bytes), while every
// object this package signs itself starts with its tag's first letter, so a
// domain signature can never be taken for an envelope, op or consent
// signature, nor one tag's for another's.
func domainSigned(tag string, msg []byte) []byte {
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(tag)+len(msg)), uint16(len(tag)))
	b = append(b, tag...)
	return append(b, msg...)
}

// SignDomain signs msg with the device's Ed25519 key for a protocol outside
// this package (agent receipts, approval statements), under that protocol's
// own domain tag. It panics on an empty or over-long tag: tags are
// constants, so that is a programming error.
func (d *Device) SignDomain(tag string, msg []byte) []byte {
	if tag == "" || len(tag) > MaxDomainTagLen {
		panic("envelope: SignDomain: bad domain tag length")
	}
	return ed25519.Sign(d.sign, domainSigned(tag, msg))
}

// VerifyDomain checks a SignDomain signature by the Ed25519 key signing
// (a DeviceCert's Signing) over msg under tag.
func VerifyDomain(signing []byte, tag string, msg, sig []byte) bool {
	if len(signing) != ed25519.PublicKeySize || tag == "" || len(tag) > MaxDomainTagLen {
		return false
	}
	return ed25519.Verify(signing, domainSigned(tag, msg), sig)
}
