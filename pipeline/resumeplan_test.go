package pipeline

import (
	"slices"
	"testing"
)

// resumePlan is a pure function of the recorded steps: which steps a resume
// enqueues and which it puts back to pending.
func TestResumePlan(t *testing.T) {
	g := &Graph{Steps: []GraphStep{
		{Name: "root"},
		{Name: "left", After: []string{"root"}},
		{Name: "right", After: []string{"root"}},
		{Name: "join", After: []string{"left", "right"}},
	}}
	ok := func(name string, gen int, in map[string]int) StepRun {
		return StepRun{Step: name, Status: StepSucceeded, Generation: gen, Inputs: in}
	}
	with := func(s StepRun, st StepStatus) StepRun { s.Status = st; return s }
	root := ok("root", 1, nil)
	cases := []struct {
		name       string
		steps      []StepRun
		ready      []string
		renewNames []string
	}{
		{"all succeeded on the latest outputs", []StepRun{root, ok("left", 1, map[string]int{"root": 1}), ok("right", 1, map[string]int{"root": 1}), ok("join", 1, map[string]int{"left": 1, "right": 1})}, nil, nil},
		{"a failed step whose predecessors succeeded", []StepRun{root, with(ok("left", 1, nil), StepFailed), ok("right", 1, map[string]int{"root": 1}), with(ok("join", 1, nil), StepPending)}, []string{"left"}, nil},
		{"a cancelled step behind a failed one is put back to pending", []StepRun{root, with(ok("left", 1, nil), StepFailed), ok("right", 1, map[string]int{"root": 1}), with(ok("join", 1, nil), StepCancelled)}, []string{"left"}, []string{"join"}},
		{"a succeeded step on a superseded input (a cancelled cascade)", []StepRun{root, ok("left", 2, map[string]int{"root": 1}), ok("right", 1, map[string]int{"root": 1}), ok("join", 1, map[string]int{"left": 1, "right": 1})}, []string{"join"}, nil},
		{"superseded by an --only re-run: left alone", []StepRun{root, func() StepRun { s := ok("left", 2, map[string]int{"root": 1}); s.Only = true; return s }(), ok("right", 1, map[string]int{"root": 1}), ok("join", 1, map[string]int{"left": 1, "right": 1})}, nil, nil},
		{"superseded but a predecessor is running: left to its cascade", []StepRun{root, ok("left", 2, map[string]int{"root": 1}), with(ok("right", 2, map[string]int{"root": 1}), StepRunning), ok("join", 1, map[string]int{"left": 1, "right": 1})}, nil, nil},
		{"in flight steps are left to the queue", []StepRun{root, with(ok("left", 1, nil), StepRunning), with(ok("right", 1, nil), StepRetrying), with(ok("join", 1, nil), StepPending)}, nil, nil},
	}
	for _, c := range cases {
		ready, renew := resumePlan(g, c.steps)
		var names []string
		for _, s := range renew {
			names = append(names, s.Step)
		}
		if !slices.Equal(ready, c.ready) || !slices.Equal(names, c.renewNames) {
			t.Errorf("%s: ready %v renew %v; want %v, %v", c.name, ready, names, c.ready, c.renewNames)
		}
	}
}
