package pipeline

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestValidTaskIDMatchesThePattern(t *testing.T) {
	re := regexp.MustCompile("^" + TaskIDPattern + "$")
	cases := []string{"", "a", "A-z_09", strings.Repeat("x", 500), strings.Repeat("x", 501),
		"a b", "a/b", "a.b", "é", "a\n", "-_-", "ab\x00"}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ09_-./ \x00é"
	for range 2000 {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, c := range cases {
		if got, want := ValidTaskID(c), re.MatchString(c); got != want {
			t.Errorf("ValidTaskID(%q) = %v, the pattern says %v", c, got, want)
		}
	}
}
