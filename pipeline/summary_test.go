package pipeline_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// A finished run carries a summary of its steps in its own record, so that
// a listing (the dashboard's grid) needs no read of the steps.
func TestFinishedRunCarriesItsStepSummary(t *testing.T) {
	h := newHarness(t, chainYAML)
	h.bodies["b"].fail = func(int) error { return steps.Permanent(errors.New("bad row")) }
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	h.drain(20)
	runs, err := h.ledger.ListRuns(ctx, pipeline.RunFilter{Pipeline: "chain"})
	if err != nil || len(runs) != 1 {
		t.Fatalf("ListRuns: %v %v", runs, err)
	}
	r := runs[0]
	if r.Status != pipeline.RunFailed || !pipeline.SummaryFinal(r) {
		t.Fatalf("run %s, summary %+v: want failed with a final summary", r.Status, r.Summary)
	}
	full := h.run(r.ID)
	want := pipeline.Summarize(full.Steps)
	if !slices.Equal(r.Summary, want) {
		t.Errorf("summary %+v, want %+v", r.Summary, want)
	}
	got := map[string]pipeline.StepStatus{}
	for _, s := range r.Summary {
		got[s.Step] = s.Status
	}
	if got["a"] != pipeline.StepSucceeded || got["b"] != pipeline.StepFailed || got["c"] != pipeline.StepPending {
		t.Errorf("summary statuses %v", got)
	}
}

func TestSummaryFinal(t *testing.T) {
	s := func(st pipeline.StepStatus) []pipeline.StepSummary {
		return []pipeline.StepSummary{{Step: "a", Status: pipeline.StepSucceeded}, {Step: "b", Status: st}}
	}
	for _, c := range []struct {
		run     pipeline.RunStatus
		summary []pipeline.StepSummary
		want    bool
	}{
		{pipeline.RunSucceeded, s(pipeline.StepSucceeded), true},
		{pipeline.RunFailed, s(pipeline.StepPending), true},
		{pipeline.RunFailed, s(pipeline.StepRunning), false}, // a parallel branch still in flight
		{pipeline.RunFailed, s(pipeline.StepRetrying), false},
		{pipeline.RunRunning, s(pipeline.StepSucceeded), false}, // reopened: the summary is stale
		{pipeline.RunSucceeded, nil, false},                     // finished before summaries
	} {
		if got := pipeline.SummaryFinal(pipeline.Run{Status: c.run, Summary: c.summary}); got != c.want {
			t.Errorf("SummaryFinal(%s, %+v) = %v, want %v", c.run, c.summary, got, c.want)
		}
	}
	if d := (pipeline.StepRun{StartedAt: time.Unix(0, 0), FinishedAt: time.Unix(2, 0)}); pipeline.Summarize([]pipeline.StepRun{d})[0].Millis != 2000 {
		t.Error("Summarize: duration not in milliseconds")
	}
}
