package kbsapi

import (
	"bytes"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"db-url", true},
		{"GITHUB_TOKEN.v2", true},
		{"0", true},
		{strings.Repeat("a", MaxNameLen), true},
		{strings.Repeat("a", MaxNameLen+1), false},
		{"", false},
		{"-x", false},
		{".hidden", false},
		{"../etc", false},
		{"a/b", false},
		{"a b", false},
		{"é", false},
	} {
		if got := ValidName(tc.name); got != tc.want {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReleaseInfoFraming checks that no two (name, version, nonce) share
// an HPKE info, including those that concatenate to the same bytes.
func TestReleaseInfoFraming(t *testing.T) {
	nonce := bytes.Repeat([]byte{7}, NonceSize)
	infos := [][]byte{
		ReleaseInfo("ab", 1, nonce),
		ReleaseInfo("a", 1, append([]byte("b"), nonce...)),
		ReleaseInfo("ab", 2, nonce),
		ReleaseInfo("ab", 1, bytes.Repeat([]byte{8}, NonceSize)),
		ReleaseInfo("ba", 1, nonce),
	}
	for i := range infos {
		for j := range i {
			if bytes.Equal(infos[i], infos[j]) {
				t.Errorf("ReleaseInfo %d and %d are equal: %x", i, j, infos[i])
			}
		}
	}
	if !bytes.Equal(ReleaseInfo("ab", 1, nonce), infos[0]) {
		t.Error("ReleaseInfo is not deterministic")
	}
}

func TestExpectedReportDataBindsKey(t *testing.T) {
	nonce := bytes.Repeat([]byte{1}, NonceSize)
	a, err := ExpectedReportData(nonce, []byte("key A"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ExpectedReportData(nonce, []byte("key B"))
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("report data does not depend on the public key")
	}
}
