package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// taskNameFormula is the definition of a task name, as first written: names
// are queue dedup keys that outlive a deploy, so the name built in place must
// be this one byte for byte.
func taskNameFormula(ns, runID, step string, generation int) string {
	key := fmt.Sprintf("%s\x00%s\x00%d", runID, step, generation)
	if ns != "" {
		key = ns + "\x00" + key
	}
	sum := sha256.Sum256([]byte(key))
	var b strings.Builder
	for _, r := range step {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 100 {
			break
		}
	}
	return fmt.Sprintf("%s-%s-g%d", hex.EncodeToString(sum[:8]), b.String(), generation)
}

func TestTaskNameInIsTheFormula(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("abcXYZ019_-@/. éö世\x00")
	word := func(max int) string {
		n := rng.IntN(max + 1)
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	cases := [][3]string{
		{"", "daily@2026-11-23", "extract"},
		{"projects/p/databases/(default)/documents/runs", "daily@2026-11-23", "weird step/name!"},
		{"ns", strings.Repeat("r", 300), strings.Repeat("s", 150)},
		{"", "x@y", strings.Repeat("é", 120)},
	}
	for range 20000 {
		cases = append(cases, [3]string{word(rng.IntN(2) * 60), word(50), word(130)})
	}
	gens := []int{1, 2, 9, 10, 123456789, 0, -1}
	for i, c := range cases {
		gen := gens[i%len(gens)]
		if got, want := TaskNameIn(c[0], c[1], c[2], gen), taskNameFormula(c[0], c[1], c[2], gen); got != want {
			t.Fatalf("TaskNameIn(%q, %q, %q, %d) = %q, want %q", c[0], c[1], c[2], gen, got, want)
		}
	}
}

func BenchmarkTaskNameIn(b *testing.B) {
	for b.Loop() {
		TaskNameIn("projects/p/databases/(default)/documents/runs", "daily@2026-11-23", "extract", 1)
	}
}
