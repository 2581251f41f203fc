package captoken

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Prefix starts every token string; the digit is the format version.
const Prefix = "cmt1."

// formatVersion is the first byte of the binary encoding.
const formatVersion = 1

// sigSize is the size of the HMAC-SHA256 chain value at the end of a token.
const sigSize = 32

// idSize is the size of a token id in bytes.
const idSize = 16

// Caveat flags: which optional fields a caveat block carries. Other bits are
// reserved and must be zero.
const (
	flagTools    = 1 << 0
	flagExpires  = 1 << 1
	flagArgs     = 1 << 2
	flagApprover = 1 << 3
	flagHolder   = 1 << 4
	flagBudget   = 1 << 5
	flagNonce    = 1 << 6
	flagsKnown   = flagTools | flagExpires | flagArgs | flagApprover | flagHolder | flagBudget | flagNonce
)

// Block kinds, the first byte of each block's encoding so that a root block
// can never be replayed as a caveat or the reverse.
const (
	kindRoot   = 0x52 // 'R'
	kindCaveat = 0x43 // 'C'
)

// The binary encoding (all integers big-endian, all fixed width, so every
// token has exactly one encoding):
//
//	token   = version:u8  ncaveats:u8  root  caveat*ncaveats  sig:[32]
//	root    = 'R' id:[16] audience:str subject:str tools:list expires:i64
//	caveat  = 'C' flags:u8 [tools:list] [expires:i64] [args:u8 argc*args]
//	          [approver:str] [holder:str] [budget] [nonce:[16]]
//	budget  = amount:i64 period:i64   -- base units > 0, seconds in [1, MaxBudgetPeriod]
//	argc    = tool:str arg:str values:list
//	list    = n:u8 str*n
//	str     = len:u16 bytes[len]      -- valid UTF-8, at most MaxStringLen
//
// expires is Unix seconds. The string form is Prefix followed by the
// unpadded base64url encoding of these bytes.

// encoder appends canonical encodings to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) u8(v byte)      { e.b = append(e.b, v) }
func (e *encoder) i64(v int64)    { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }
func (e *encoder) bytes(v []byte) { e.b = append(e.b, v...) }
func (e *encoder) str(s string) {
	e.b = binary.BigEndian.AppendUint16(e.b, uint16(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) list(l []string) {
	e.u8(byte(len(l)))
	for _, s := range l {
		e.str(s)
	}
}

// encodeRoot returns the canonical bytes of a root block. The block must
// have passed validation.
func encodeRoot(r *Block) []byte {
	var e encoder
	e.u8(kindRoot)
	e.bytes(r.id[:])
	e.str(r.Audience)
	e.str(r.Subject)
	e.list(r.Tools)
	e.i64(r.Expires.Unix())
	return e.b
}

// encodeCaveat returns the canonical bytes of a caveat block.
func encodeCaveat(c *Block) []byte {
	var e encoder
	e.u8(kindCaveat)
	var flags byte
	if c.Tools != nil {
		flags |= flagTools
	}
	if !c.Expires.IsZero() {
		flags |= flagExpires
	}
	if c.Args != nil {
		flags |= flagArgs
	}
	if c.Approver != "" {
		flags |= flagApprover
	}
	if c.Holder != "" {
		flags |= flagHolder
	}
	if c.Budget != nil {
		flags |= flagBudget
	}
	if c.Nonce != nil {
		flags |= flagNonce
	}
	e.u8(flags)
	if c.Tools != nil {
		e.list(c.Tools)
	}
	if !c.Expires.IsZero() {
		e.i64(c.Expires.Unix())
	}
	if c.Args != nil {
		e.u8(byte(len(c.Args)))
		for _, a := range c.Args {
			e.str(a.Tool)
			e.str(a.Arg)
			e.list(a.Values)
		}
	}
	if c.Approver != "" {
		e.str(c.Approver)
	}
	if c.Holder != "" {
		e.str(c.Holder)
	}
	if c.Budget != nil {
		e.i64(int64(c.Budget.Amount))
		e.i64(int64(c.Budget.Period / time.Second))
	}
	if c.Nonce != nil {
		e.bytes(c.Nonce)
	}
	return e.b
}

// encodeToken returns the string form of blocks and the final chain value.
func encodeToken(blocks []Block, sig [sigSize]byte) string {
	var e encoder
	e.u8(formatVersion)
	e.u8(byte(len(blocks) - 1))
	e.bytes(encodeRoot(&blocks[0]))
	for i := range blocks[1:] {
		e.bytes(encodeCaveat(&blocks[i+1]))
	}
	e.bytes(sig[:])
	return Prefix + base64.RawURLEncoding.EncodeToString(e.b)
}

// decoder reads canonical encodings strictly; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("truncated")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() byte {
	v := d.take(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (d *decoder) i64() int64 {
	v := d.take(8)
	if v == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func (d *decoder) str() string {
	l := d.take(2)
	if l == nil {
		return ""
	}
	n := int(binary.BigEndian.Uint16(l))
	if n > MaxStringLen {
		d.fail("string of %d bytes exceeds %d", n, MaxStringLen)
		return ""
	}
	v := d.take(n)
	if v == nil {
		return ""
	}
	if !utf8.Valid(v) {
		d.fail("string is not UTF-8")
		return ""
	}
	return string(v)
}

func (d *decoder) list(max int) []string {
	n := int(d.u8())
	if d.err != nil {
		return nil
	}
	if n > max {
		d.fail("list of %d entries exceeds %d", n, max)
		return nil
	}
	l := make([]string, 0, n)
	for range n {
		l = append(l, d.str())
	}
	return l
}

func (d *decoder) expires() time.Time {
	v := d.i64()
	if d.err == nil && v <= 0 {
		d.fail("expiry %d is not a positive Unix time", v)
	}
	return time.Unix(v, 0).UTC()
}

// decoded is a token split into its parts, not yet verified.
type decoded struct {
	blocks []Block
	// raw holds each block's canonical bytes, which the MAC chain covers.
	raw [][]byte
	sig [sigSize]byte
}

// decode parses a token string strictly: size caps first, then the exact
// canonical encoding with no trailing data, then field validation. It does
// not check the MAC.
func decode(token string) (*decoded, error) {
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: token of %d bytes exceeds %d", ErrMalformed, len(token), MaxTokenSize)
	}
	body, ok := strings.CutPrefix(token, Prefix)
	if !ok {
		return nil, fmt.Errorf("%w: missing %q prefix", ErrMalformed, Prefix)
	}
	// Go's base64 decoders skip \r and \n, so a token with line breaks would
	// decode like one without: reject every byte outside the alphabet first.
	// With Strict (non-zero padding bits rejected) each token has exactly
	// one string form.
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("%w: byte 0x%02x at offset %d is not base64url", ErrMalformed, c, len(Prefix)+i)
		}
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
	}
	d := &decoder{b: raw}
	if v := d.u8(); d.err == nil && v != formatVersion {
		d.fail("unknown format version %d", v)
	}
	n := int(d.u8())
	if d.err == nil && n > MaxCaveats {
		d.fail("%d caveats exceed %d", n, MaxCaveats)
	}
	out := &decoded{}
	start := d.b
	root := d.root()
	if d.err != nil {
		return nil, d.err
	}
	out.blocks = append(out.blocks, root)
	out.raw = append(out.raw, start[:len(start)-len(d.b)])
	for range n {
		start := d.b
		c := d.caveat()
		if d.err != nil {
			return nil, d.err
		}
		out.blocks = append(out.blocks, c)
		out.raw = append(out.raw, start[:len(start)-len(d.b)])
	}
	sig := d.take(sigSize)
	if d.err != nil {
		return nil, d.err
	}
	copy(out.sig[:], sig)
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	for i := range out.blocks {
		if err := out.blocks[i].validate(i == 0); err != nil {
			return nil, fmt.Errorf("%w: block %d: %v", ErrMalformed, i, err)
		}
	}
	if err := consistentNames(out.blocks); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return out, nil
}

func (d *decoder) root() Block {
	if k := d.u8(); d.err == nil && k != kindRoot {
		d.fail("first block is not a root block")
	}
	var b Block
	copy(b.id[:], d.take(idSize))
	b.ID = fmtID(b.id)
	b.Audience = d.str()
	b.Subject = d.str()
	b.Tools = d.list(MaxPatterns)
	b.Expires = d.expires()
	return b
}

func (d *decoder) caveat() Block {
	if k := d.u8(); d.err == nil && k != kindCaveat {
		d.fail("block is not a caveat block")
	}
	flags := d.u8()
	if d.err != nil {
		return Block{}
	}
	if flags&^flagsKnown != 0 {
		d.fail("reserved caveat flags %#x set", flags&^flagsKnown)
	}
	if flags&^flagNonce == 0 {
		d.fail("caveat restricts nothing")
	}
	var b Block
	if flags&flagTools != 0 {
		b.Tools = d.list(MaxPatterns)
	}
	if flags&flagExpires != 0 {
		b.Expires = d.expires()
	}
	if flags&flagArgs != 0 {
		n := int(d.u8())
		if d.err == nil && n > MaxArgConstraints {
			d.fail("%d argument constraints exceed %d", n, MaxArgConstraints)
		}
		b.Args = make([]ArgConstraint, 0, n)
		for range n {
			if d.err != nil {
				break
			}
			b.Args = append(b.Args, ArgConstraint{Tool: d.str(), Arg: d.str(), Values: d.list(MaxArgValues)})
		}
	}
	if flags&flagApprover != 0 {
		if b.Approver = d.str(); d.err == nil && b.Approver == "" {
			d.fail("empty approver")
		}
	}
	if flags&flagHolder != 0 {
		if b.Holder = d.str(); d.err == nil && b.Holder == "" {
			d.fail("empty holder")
		}
	}
	if flags&flagBudget != 0 {
		amount, secs := d.i64(), d.i64()
		if d.err == nil {
			if amount <= 0 || secs <= 0 || secs > int64(MaxBudgetPeriod/time.Second) {
				d.fail("budget %d/%ds out of range", amount, secs)
			}
			b.Budget = &Budget{Amount: uint64(amount), Period: time.Duration(secs) * time.Second}
		}
	}
	if flags&flagNonce != 0 {
		if v := d.take(NonceSize); v != nil {
			b.Nonce = slices.Clone(v)
		}
	}
	return b
}

// validPattern reports whether p is a usable glob: non-empty and well formed
// for path.Match.
func validPattern(p string) error {
	if p == "" {
		return fmt.Errorf("empty pattern")
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("pattern %q: %w", p, err)
	}
	return nil
}
