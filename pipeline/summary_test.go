package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/ledger/boltledger"

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
		{pipeline.RunFailed, s(pipeline.StepPending), false}, // no recorded graph: b might still run (see below)
		{pipeline.RunFailed, s(pipeline.StepRunning), false}, // a parallel branch still in flight
		{pipeline.RunFailed, s(pipeline.StepRetrying), false},
		{pipeline.RunRunning, s(pipeline.StepSucceeded), false}, // reopened: the summary is stale
		{pipeline.RunSucceeded, nil, false},                     // finished before summaries
	} {
		if got := pipeline.SummaryFinal(pipeline.Run{Status: c.run, Summary: c.summary}); got != c.want {
			t.Errorf("SummaryFinal(%s, %+v) = %v, want %v", c.run, c.summary, got, c.want)
		}
	}
	if d := (pipeline.StepRun{StartedAt: time.Unix(0, 0), FinishedAt: time.Unix(2, 0)}); pipeline.Summarize([]pipeline.StepRun{d})[0].Micros != 2_000_000 {
		t.Error("Summarize: duration not in microseconds")
	}
}

// getRunCounter is a real ledger that counts GetRun calls.
type getRunCounter struct {
	pipeline.Ledger
	gets atomic.Int32
}

func (c *getRunCounter) GetRun(ctx context.Context, id string) (pipeline.Run, error) {
	c.gets.Add(1)
	return c.Ledger.GetRun(ctx, id)
}

// Stats reads the steps of a run only when its summary cannot stand for
// them (unfinished, or finished before summaries), with the same figures.
func TestStatsUseFinalSummaries(t *testing.T) {
	led, err := boltledger.Open(t.TempDir() + "/ledger.db")
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	counting := &getRunCounter{Ledger: led}
	defs, err := pipeline.Parse("t.yaml", []byte("name: p\ntime_zone: UTC\nsteps:\n  - {name: a, kind: noop}\n  - {name: b, kind: noop}\n"), steps.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	o, err := pipeline.New(pipeline.Config{Catalog: pipeline.NewCatalog(defs...), Ledger: counting, Queue: &recQueue{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	seed := func(date string, status pipeline.RunStatus, summarize bool, bMillis int) {
		t0 := now.Add(-time.Hour)
		r := pipeline.Run{ID: pipeline.RunID("p", date), Pipeline: "p", Key: date, Date: date, Status: pipeline.RunRunning, CreatedAt: t0, StartedAt: t0}
		srs := []pipeline.StepRun{
			{RunID: r.ID, Step: "a", Status: pipeline.StepSucceeded, Attempts: 1, MaxAttempts: 3, StartedAt: t0, FinishedAt: t0.Add(time.Second)},
			{RunID: r.ID, Step: "b", Status: pipeline.StepFailed, Attempts: 2, MaxAttempts: 3, StartedAt: t0, FinishedAt: t0.Add(time.Duration(bMillis) * time.Millisecond)},
		}
		if status == pipeline.RunSucceeded {
			srs[1].Status = pipeline.StepSucceeded
		}
		stored, _, err := led.CreateRun(ctx, r, srs)
		if err != nil {
			t.Fatal(err)
		}
		if status.Terminal() {
			stored.Status, stored.FinishedAt = status, t0.Add(2*time.Second)
			if summarize {
				stored.Summary = pipeline.Summarize(srs)
			}
			if _, err := led.UpdateRun(ctx, stored); err != nil {
				t.Fatal(err)
			}
		}
	}
	seed("2026-11-27", pipeline.RunSucceeded, true, 200)
	seed("2026-11-28", pipeline.RunFailed, true, 400)
	seed("2026-11-29", pipeline.RunSucceeded, false, 600) // finished before summaries
	seed("2026-11-30", pipeline.RunRunning, false, 800)
	got, err := o.Stats(ctx, "p", now.AddDate(0, 0, -7))
	if err != nil || len(got) != 1 {
		t.Fatalf("Stats: %v %v", got, err)
	}
	if n := counting.gets.Load(); n != 2 {
		t.Errorf("Stats read %d runs with their steps, want 2 (the unfinished one and the one without a summary)", n)
	}
	p := got[0]
	if p.Runs != 4 || p.Succeeded != 2 || p.Failed != 1 || p.Unfinished != 1 {
		t.Errorf("pipeline figures %+v", p)
	}
	b := p.Steps[1]
	// b: succeeded 200 ms, failed 400 ms, succeeded 600 ms; the running run's
	// failed-then-... record counts as it stands (failed, 800 ms).
	if b.Step != "b" || b.Succeeded != 2 || b.Failed != 2 || b.AvgMillis != 500 || b.P95Millis != 800 || b.AvgAttempts != 2 {
		t.Errorf("step b figures %+v", b)
	}
}

// A summary stands for the steps only when no step of it could still run: a
// pending step whose predecessors all succeeded may have its task queued (a
// parallel branch ends after its run failed), one behind a failed step never
// runs.
func TestSummaryFinalKnowsWhichPendingStepsCanStillRun(t *testing.T) {
	reg := steps.NewRegistry()
	reg.Register("go", func(map[string]any) (steps.Step, error) { return steps.StepFunc(nil), nil })
	defs, err := pipeline.Parse("fan.yaml", []byte(`
name: fan
steps:
  - {name: fetch, kind: go}
  - {name: left, kind: go, after: [fetch]}
  - {name: right, kind: go, after: [fetch]}
  - {name: join, kind: go, after: [left, right]}
`), reg)
	if err != nil {
		t.Fatal(err)
	}
	g := defs[0].Graph()
	sum := func(states ...pipeline.StepStatus) []pipeline.StepSummary {
		var out []pipeline.StepSummary
		for i, n := range []string{"fetch", "left", "right", "join"} {
			out = append(out, pipeline.StepSummary{Step: n, Status: states[i]})
		}
		return out
	}
	const (
		ok, bad, pend, run = pipeline.StepSucceeded, pipeline.StepFailed, pipeline.StepPending, pipeline.StepRunning
	)
	for _, c := range []struct {
		name   string
		status pipeline.RunStatus
		graph  *pipeline.Graph
		sum    []pipeline.StepSummary
		final  bool
	}{
		{"all succeeded", pipeline.RunSucceeded, g, sum(ok, ok, ok, ok), true},
		{"failed, the rest behind it", pipeline.RunFailed, g, sum(ok, bad, ok, pend), true},
		{"failed, a parallel branch still to run", pipeline.RunFailed, g, sum(ok, bad, pend, pend), false},
		{"failed, a parallel branch running", pipeline.RunFailed, g, sum(ok, bad, run, pend), false},
		{"no graph recorded", pipeline.RunFailed, nil, sum(ok, bad, ok, pend), false},
		{"still running", pipeline.RunRunning, g, sum(ok, ok, ok, ok), false},
	} {
		r := pipeline.Run{Status: c.status, Graph: c.graph, Summary: c.sum}
		if got := pipeline.SummaryFinal(r); got != c.final {
			t.Errorf("%s: SummaryFinal = %v, want %v", c.name, got, c.final)
		}
	}
}
