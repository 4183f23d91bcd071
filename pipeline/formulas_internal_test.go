package pipeline

// Names and digests that outlive a deploy (task names are queue dedup keys,
// run input digests are stored on step records) are built in place for
// speed; these tests hold them to their definitions, written plainly.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// runInputFormula is the definition of a run's input digest: records carry
// it, so the digest hashed without encoding/json must be this one.
func runInputFormula(date string, params map[string]string) string {
	if len(params) == 0 {
		params = nil
	}
	b, _ := json.Marshal(struct {
		Date   string            `json:"d"`
		Params map[string]string `json:"p"`
	}{date, params})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func TestRunInputDigestIsTheFormula(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("0123456789-<>&\"\\aé\x00")
	word := func(max int) string {
		var b strings.Builder
		for range rng.IntN(max + 1) {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	cases := []struct {
		date   string
		params map[string]string
	}{{"2026-12-02", nil}, {"2026-12-02", map[string]string{}}, {"", nil}, {"2026-12-02", map[string]string{"region": "eu"}}}
	for range 20000 {
		var params map[string]string
		if rng.IntN(3) == 0 {
			params = map[string]string{word(5): word(10)}
		}
		date := word(12)
		if rng.IntN(2) == 0 {
			date = fmt.Sprintf("%04d-%02d-%02d", rng.IntN(10000), rng.IntN(13), rng.IntN(32))
		}
		cases = append(cases, struct {
			date   string
			params map[string]string
		}{date, params})
	}
	cases = append(cases, struct {
		date   string
		params map[string]string
	}{strings.Repeat("1", 40), nil})
	for _, c := range cases {
		if got, want := runInputDigest(c.date, c.params), runInputFormula(c.date, c.params); got != want {
			t.Fatalf("runInputDigest(%q, %v) = %s, want %s", c.date, c.params, got, want)
		}
	}
}
