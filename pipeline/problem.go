package pipeline

import (
	"fmt"
	"strings"

	"github.com/agext/levenshtein"
)

// Problem is one thing wrong in a pipeline file, at its place. Its text reads
// "file:line:column: message", the form editors and terminals link to.
type Problem struct {
	File   string
	Line   int // 1-based; 0 when the problem has no place in the file
	Column int // 1-based; 0 when unknown
	Msg    string
}

func (p *Problem) Error() string {
	switch {
	case p.Line == 0:
		return p.File + ": " + p.Msg
	case p.Column == 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Msg)
}

// suggest returns the candidate closest to got (by edit distance, ignoring
// case, and also against the part after the last dot so that "extrakt"
// finds "example.extract"), or "" when none is close enough to be a typo.
func suggest(got string, candidates []string) string {
	g := strings.ToLower(got)
	best, bestD := "", -1
	for _, c := range candidates {
		if c == got {
			continue
		}
		lc := strings.ToLower(c)
		d := levenshtein.Distance(g, lc, nil)
		if i := strings.LastIndexByte(lc, '.'); i >= 0 && !strings.Contains(g, ".") {
			d = min(d, levenshtein.Distance(g, lc[i+1:], nil))
		}
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > typoLimit(len(g)) {
		return ""
	}
	return best
}

// typoLimit is how many edits still read as a typo of a word of n letters.
func typoLimit(n int) int {
	switch {
	case n <= 2:
		return 0
	case n <= 4:
		return 1
	case n <= 8:
		return 2
	}
	return 3
}

// didYouMean formats suggest's answer as a sentence tail, or "".
func didYouMean(got string, candidates []string) string {
	if s := suggest(got, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}
