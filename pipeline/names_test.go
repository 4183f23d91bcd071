package pipeline

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestNamePatterns checks validName and validKey against the patterns the
// error messages show, on a table of edge cases and on random strings over
// an alphabet that includes every accepted character and some that are not.
func TestNamePatterns(t *testing.T) {
	checks := []struct {
		name string
		fn   func(string) bool
		re   *regexp.Regexp
	}{
		{"validName", validName, regexp.MustCompile(namePattern)},
		{"validKey", validKey, regexp.MustCompile(keyPattern)},
	}
	cases := []string{"", "a", "A", "0", "_a", "-a", ".a", "a.", "a_-", "daily", "Daily", "2026-03-14", "v1.2", "a b", "a\n", "é",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 100), strings.Repeat("a", 101), "a@b", "a/b"}
	const alphabet = "az09AZ_-.@ /\n\x00é"
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		n := rng.IntN(110)
		if rng.IntN(2) == 0 {
			n = rng.IntN(6)
		}
		b := make([]byte, n)
		for i := range b {
			// Mostly accepted characters, so that long strings sometimes match.
			if rng.IntN(20) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = "abcxyz0189ABZ_-."[rng.IntN(16)]
			}
		}
		cases = append(cases, string(b))
	}
	for _, c := range checks {
		matched := 0
		for _, s := range cases {
			want := c.re.MatchString(s)
			if got := c.fn(s); got != want {
				t.Errorf("%s(%q) = %v, the pattern %s says %v", c.name, s, got, c.re, want)
			}
			if want {
				matched++
			}
		}
		if matched < 100 || matched > len(cases)-100 {
			t.Errorf("%s: %d of %d cases match: the cases do not exercise both answers", c.name, matched, len(cases))
		}
	}
}
