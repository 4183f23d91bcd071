package pipeline

import (
	"testing"
	"time"
)

func TestFinishIfDone(t *testing.T) {
	g := testGraph(t, GraphStep{Name: "a"}, GraphStep{Name: "b", After: []string{"a"}})
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	step := func(name string, st StepStatus, gen int, inputs map[string]int) StepRun {
		return StepRun{Step: name, Status: st, Generation: gen, Inputs: inputs}
	}
	cases := []struct {
		name string
		run  Run
		want bool
	}{
		{"every step succeeded", Run{Status: RunRunning, Steps: []StepRun{step("a", StepSucceeded, 1, nil), step("b", StepSucceeded, 1, map[string]int{"a": 1})}}, true},
		{"a step still pending", Run{Status: RunRunning, Steps: []StepRun{step("a", StepSucceeded, 1, nil), step("b", StepPending, 1, nil)}}, false},
		{"a step on a superseded input", Run{Status: RunRunning, Steps: []StepRun{step("a", StepSucceeded, 2, nil), step("b", StepSucceeded, 1, map[string]int{"a": 1})}}, false},
		{"the run already ended", Run{Status: RunCancelled, Steps: []StepRun{step("a", StepSucceeded, 1, nil), step("b", StepSucceeded, 1, map[string]int{"a": 1})}}, false},
		{"the run already succeeded", Run{Status: RunSucceeded, Steps: []StepRun{step("a", StepSucceeded, 1, nil), step("b", StepSucceeded, 1, map[string]int{"a": 1})}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := finishIfDone(g, now)(c.run)
			if ok != c.want {
				t.Fatalf("ok = %v, want %v", ok, c.want)
			}
			if !ok {
				if got.Status != c.run.Status || !got.FinishedAt.IsZero() {
					t.Errorf("declined, yet changed the run: %s finished %s", got.Status, got.FinishedAt)
				}
				return
			}
			if got.Status != RunSucceeded || !got.FinishedAt.Equal(now) || got.Notify != NotifyPending || len(got.Summary) != len(c.run.Steps) {
				t.Errorf("ended as %s at %s, notify %q, %d summary entries", got.Status, got.FinishedAt, got.Notify, len(got.Summary))
			}
		})
	}
}

func TestMayEndRun(t *testing.T) {
	g := testGraph(t, GraphStep{Name: "a"}, GraphStep{Name: "b", After: []string{"a"}})
	cases := []struct {
		step     StepRun
		onlyTask bool
		want     bool
	}{
		{StepRun{Step: "b"}, false, true},             // a sink
		{StepRun{Step: "a"}, false, false},            // has a successor
		{StepRun{Step: "a"}, true, true},              // its task runs it alone
		{StepRun{Step: "a", Only: true}, false, true}, // recorded as run alone
	}
	for _, c := range cases {
		if got := mayEndRun(g, c.step, c.onlyTask); got != c.want {
			t.Errorf("mayEndRun(%s, only=%v/%v) = %v, want %v", c.step.Step, c.onlyTask, c.step.Only, got, c.want)
		}
	}
}
