package redact

import (
	"encoding/binary"
	"strings"
)

// matcher finds the variants in a text. Nearly every text the gateway
// redacts contains no secret, so the scan is built for that case: at each
// position a 4-byte window is hashed into a 64 Ki-bit filter of the
// variants' first four bytes, and only a hit looks further (the variants
// starting with exactly those bytes, longest first). A text without any
// variant is read once and never copied. The result is the same as a
// strings.Replacer of the variants, longest first, each to Mask (tested by
// FuzzMatcher).
type matcher struct {
	filter [1 << 10]uint64     // bit h(prefix) set for every variant's prefix
	byPre  map[uint32][]string // variants by their first four bytes, longest first
	minLen int                 // the shortest variant, at least 4
}

// filterHash maps a 4-byte prefix to a filter bit (Fibonacci hashing).
func filterHash(p uint32) uint32 { return (p * 0x9E3779B1) >> 16 }

// newMatcher returns a matcher for vs, sorted longest first, or nil if a
// variant is shorter than four bytes (the caller then uses a
// strings.Replacer).
func newMatcher(vs []string) *matcher {
	m := &matcher{byPre: make(map[uint32][]string, len(vs)), minLen: int(^uint(0) >> 1)}
	for _, v := range vs {
		if len(v) < 4 {
			return nil
		}
		p := binary.LittleEndian.Uint32([]byte(v[:4]))
		h := filterHash(p)
		m.filter[h>>6] |= 1 << (h & 63)
		m.byPre[p] = append(m.byPre[p], v)
		m.minLen = min(m.minLen, len(v))
	}
	return m
}

// next returns the position and length of the first variant in s at or
// after from, the longest one at that position, or -1.
func (m *matcher) next(s string, from int) (int, int) {
	for i := from; i+m.minLen <= len(s); i++ {
		p := uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
		h := filterHash(p)
		if m.filter[h>>6]&(1<<(h&63)) == 0 {
			continue
		}
		for _, v := range m.byPre[p] {
			if strings.HasPrefix(s[i:], v) {
				return i, len(v)
			}
		}
	}
	return -1, 0
}

// replace returns s with every variant replaced by Mask, scanning left to
// right; s itself when there is none.
func (m *matcher) replace(s string) string {
	i, n := m.next(s, 0)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for i >= 0 {
		b.WriteString(s[last:i])
		b.WriteString(Mask)
		last = i + n
		i, n = m.next(s, last)
	}
	b.WriteString(s[last:])
	return b.String()
}

// contains reports whether s contains a variant.
func (m *matcher) contains(s string) bool {
	i, _ := m.next(s, 0)
	return i >= 0
}
