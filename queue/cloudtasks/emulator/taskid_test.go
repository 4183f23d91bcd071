package emulator

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestValidTaskIDMatchesThePattern(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]{1,500}$`)
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
		if got, want := validTaskID(c), re.MatchString(c); got != want {
			t.Errorf("validTaskID(%q) = %v, the pattern says %v", c, got, want)
		}
	}
}
