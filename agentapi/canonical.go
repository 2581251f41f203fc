package agentapi

import "golang.org/x/crypto/cryptobyte"

// canon builds the canonical bytes that are hashed or signed: every field in
// a fixed order, strings and byte strings u32be-length-prefixed, integers
// u64be, booleans one byte. The framing is injective, so two different
// values never give the same bytes; JSON is never hashed, because encoders
// disagree on escaping and spacing.
type canon struct{ b cryptobyte.Builder }

func newCanon(tag string) *canon {
	c := &canon{}
	c.str(tag)
	return c
}

func (c *canon) str(s string) { c.bytes([]byte(s)) }

func (c *canon) bytes(p []byte) {
	c.b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(p) })
}

func (c *canon) u64(v uint64) { c.b.AddUint64(v) }

func (c *canon) i64(v int64) { c.b.AddUint64(uint64(v)) }

func (c *canon) boolean(v bool) {
	if v {
		c.b.AddUint8(1)
	} else {
		c.b.AddUint8(0)
	}
}

func (c *canon) list(n int) { c.b.AddUint32(uint32(n)) }

func (c *canon) done() []byte { return c.b.BytesOrPanic() }
