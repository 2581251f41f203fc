package attest

import (
	"bytes"
	"crypto/sha512"
	"strings"
	"testing"
)

func TestBindReportData(t *testing.T) {
	bind := func(tag string, parts ...[]byte) [ReportDataSize]byte {
		t.Helper()
		rd, err := BindReportData(tag, parts...)
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	// Known answer: u16be(3) "abc" u32be(1) "x".
	want := sha512.Sum512([]byte("\x00\x03abc\x00\x00\x00\x01x"))
	if got := bind("abc", []byte("x")); got != want {
		t.Fatalf("framing changed: %x", got)
	}
	distinct := []struct {
		name string
		a, b [ReportDataSize]byte
	}{
		{"split point", bind("t", []byte("ab"), []byte("c")), bind("t", []byte("a"), []byte("bc"))},
		{"empty part vs none", bind("t", []byte{}), bind("t")},
		{"tag vs part", bind("ab", []byte("c")), bind("a", []byte("bc"))},
		{"tag", bind(TagRATLS, []byte("k")), bind(TagKBS, []byte("k"))},
		{"part count", bind("t", []byte("a"), nil), bind("t", []byte("a"))},
	}
	for _, d := range distinct {
		t.Run(d.name, func(t *testing.T) {
			if d.a == d.b {
				t.Fatal("distinct inputs bound to the same report data")
			}
		})
	}
	for _, tag := range []string{TagRATLS, TagKBS, TagGateway, TagNonce} {
		if len(tag) > MaxTagLen {
			t.Errorf("tag %q too long", tag)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", MaxTagLen+1)} {
		if _, err := BindReportData(bad); err == nil {
			t.Errorf("tag of %d bytes accepted", len(bad))
		}
	}
	if _, err := BindReportData(strings.Repeat("x", MaxTagLen)); err != nil {
		t.Errorf("tag of MaxTagLen bytes rejected: %v", err)
	}
}

func TestPadReportData(t *testing.T) {
	got, err := PadReportData([]byte{1, 2}, 4)
	if err != nil || !bytes.Equal(got, []byte{1, 2, 0, 0}) {
		t.Fatalf("PadReportData = %x, %v", got, err)
	}
	if _, err := PadReportData(make([]byte, 5), 4); err == nil {
		t.Fatal("over-long report data truncated instead of rejected")
	} else if c, _ := CheckOf(err); c != CheckReportData {
		t.Fatalf("check = %q", c)
	}
}
