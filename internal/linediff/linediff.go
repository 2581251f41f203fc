// Package linediff compares two tool definitions line by line, for an
// operator reviewing a changed definition before approving it by hash.
package linediff

import (
	"bytes"
	"encoding/json"
	"strings"
)

// MaxLines caps the lines compared on each side: past it the whole old
// text is shown removed and the new one added (the comparison is
// quadratic, and a definition that long is read in full anyway).
const MaxLines = 4000

// Op says what a Line is.
type Op byte

const (
	Same    Op = ' '
	Removed Op = '-'
	Added   Op = '+'
)

// Line is one line of a diff.
type Line struct {
	Op   Op
	Text string
}

// String is the line in unified style: its op, then its text.
func (l Line) String() string { return string(l.Op) + l.Text }

// JSON returns the line diff of two JSON documents, each indented two
// spaces first (bytes that are not JSON are compared as they are). A nil
// old gives every new line as added.
func JSON(old, new []byte) []Line {
	return Text(indent(old), indent(new))
}

func indent(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}

// Text returns the line diff of two texts: the longest common
// subsequence of lines kept, the rest removed or added.
func Text(old, new string) []Line {
	a, b := split(old), split(new)
	var out []Line
	if len(a) > MaxLines || len(b) > MaxLines {
		for _, l := range a {
			out = append(out, Line{Removed, l})
		}
		for _, l := range b {
			out = append(out, Line{Added, l})
		}
		return out
	}
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			out = append(out, Line{Same, a[i]})
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, Line{Removed, a[i]})
			i++
		default:
			out = append(out, Line{Added, b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		out = append(out, Line{Removed, a[i]})
	}
	for ; j < len(b); j++ {
		out = append(out, Line{Added, b[j]})
	}
	return out
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
