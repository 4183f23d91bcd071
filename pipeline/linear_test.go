package pipeline

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func testGraph(t *testing.T, steps ...GraphStep) *Graph {
	t.Helper()
	g := &Graph{TimeZone: "UTC", Steps: steps}
	if err := g.index(); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestLinearSuccessorsTable(t *testing.T) {
	// a -> b -> {c, d}; c, e -> f (a join); g alone.
	g := testGraph(t,
		GraphStep{Name: "a", Kind: "noop"},
		GraphStep{Name: "b", Kind: "noop", After: []string{"a"}},
		GraphStep{Name: "c", Kind: "noop", After: []string{"b"}},
		GraphStep{Name: "d", Kind: "noop", After: []string{"b"}},
		GraphStep{Name: "e", Kind: "noop"},
		GraphStep{Name: "f", Kind: "noop", After: []string{"c", "e"}},
		GraphStep{Name: "g", Kind: "noop"},
	)
	gen1 := func(step string) StepRun { return StepRun{Step: step, Status: StepSucceeded, Generation: 1} }
	cases := []struct {
		name     string
		s        StepRun
		onlyTask bool
		want     []string
		ok       bool
	}{
		{"chain", gen1("a"), false, []string{"b"}, true},
		{"fan-out", gen1("b"), false, []string{"c", "d"}, true},
		{"into a join", gen1("c"), false, nil, false},
		{"sink", gen1("d"), false, nil, false},
		{"lone step", gen1("g"), false, nil, false},
		{"re-run generation", StepRun{Step: "a", Status: StepSucceeded, Generation: 2}, false, nil, false},
		{"task --only", gen1("a"), true, nil, false},
		{"step --only", StepRun{Step: "a", Status: StepSucceeded, Generation: 1, Only: true}, false, nil, false},
		{"unknown step", gen1("zz"), false, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := linearSuccessors(g, c.s, c.onlyTask)
			if ok != c.ok || !slices.Equal(got, c.want) {
				t.Errorf("linearSuccessors = %v, %t; want %v, %t", got, ok, c.want, c.ok)
			}
		})
	}
}

// TestLinearSuccessorsRandom checks, on random graphs and steps, that a
// linear hand-off is exactly the one advance would do without a read: every
// successor's only predecessor is the step, in generation 1, chaining on.
func TestLinearSuccessorsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	for i := range 500 {
		n := 1 + rng.IntN(7)
		steps := make([]GraphStep, n)
		for j := range steps {
			steps[j] = GraphStep{Name: fmt.Sprintf("s%d", j), Kind: "noop"}
			for k := range j {
				if rng.IntN(3) == 0 {
					steps[j].After = append(steps[j].After, steps[k].Name)
				}
			}
		}
		g := testGraph(t, steps...)
		s := StepRun{Step: steps[rng.IntN(n)].Name, Status: StepSucceeded, Generation: 1 + rng.IntN(2), Only: rng.IntN(5) == 0}
		onlyTask := rng.IntN(5) == 0
		next, ok := linearSuccessors(g, s, onlyTask)

		succs := g.Successors(s.Step)
		want := !onlyTask && !s.Only && s.Generation == 1 && len(succs) > 0
		for _, name := range succs {
			if after := g.Step(name).After; len(after) != 1 {
				want = false
			}
		}
		if ok != want {
			t.Fatalf("case %d: %+v in %+v: linear=%t, want %t", i, s, steps, ok, want)
		}
		if ok && !slices.Equal(next, succs) {
			t.Fatalf("case %d: successors %v, want %v", i, next, succs)
		}
	}
}
