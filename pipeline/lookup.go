package pipeline

import (
	"errors"
	"fmt"
	"strings"
)

// Lookup returns the named pipeline, or an ErrNotFound error that names the
// loaded pipelines and the closest one ("did you mean daily?").
func (c *Catalog) Lookup(name string) (*Definition, error) {
	if d := c.Get(name); d != nil {
		return d, nil
	}
	names := make([]string, 0, len(c.order))
	for _, d := range c.order {
		names = append(names, d.Name)
	}
	msg := fmt.Sprintf("pipeline %q is unknown (loaded: %s)", name, strings.Join(names, ", "))
	if best := closest(name, names); best != "" {
		msg += fmt.Sprintf("; did you mean %s?", best)
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, msg)
}

// ExplainMissingRun replaces err, the ErrNotFound of reading run runID, with
// the reason when the run's pipeline is not loaded at all (a typo in the
// pipeline's name, most likely). Other errors are returned as they are.
func (c *Catalog) ExplainMissingRun(runID string, err error) error {
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	pipe, _, perr := SplitRunID(runID)
	if perr != nil {
		return err
	}
	if _, lerr := c.Lookup(pipe); lerr != nil {
		return fmt.Errorf("run %s: %w", runID, lerr)
	}
	return err
}

// closest is the candidate within a small edit distance of name, or "".
func closest(name string, candidates []string) string {
	best, bestDist := "", len(name)/2+1
	if bestDist > 3 {
		bestDist = 3
	}
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d <= bestDist && (best == "" || d < editDistance(strings.ToLower(name), strings.ToLower(best))) {
			best = c
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
