package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// buildTimeline lays every attempt on one axis: retries side by side in time
// order, an asynchronous attempt's wait as its own part, a running attempt to
// the axis end, and the axis widened to attempts before the run's start.
func TestTimelineLayout(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	run := pipeline.Run{ID: "web@2026-12-01", StartedAt: at(100), CreatedAt: at(0)}
	steps := []runStep{
		{StepRun: pipeline.StepRun{Step: "flaky", Attempts: 2, MaxAttempts: 3, History: []pipeline.Attempt{
			{N: 1, Generation: 1, Status: pipeline.StepRetrying, StartedAt: at(100), FinishedAt: at(110), Error: strings.Repeat("x", 200)},
			{N: 2, Generation: 1, Status: pipeline.StepSucceeded, StartedAt: at(120), FinishedAt: at(130)},
		}}, Cell: "succeeded"},
		{StepRun: pipeline.StepRun{Step: "job", Attempts: 1, MaxAttempts: 1, History: []pipeline.Attempt{
			{N: 1, Generation: 1, Status: pipeline.StepWaiting, StartedAt: at(130), WaitingSince: at(140)},
		}}, Cell: "waiting"},
		{StepRun: pipeline.StepRun{Step: "rerun", Attempts: 1, MaxAttempts: 1, History: []pipeline.Attempt{
			{N: 1, Generation: 1, Status: pipeline.StepFailed, StartedAt: at(0), FinishedAt: at(20), Error: "boom"},
			{N: 1, Generation: 2, Status: pipeline.StepSucceeded, StartedAt: at(180), FinishedAt: at(200)},
		}}, Cell: "succeeded"},
		{StepRun: pipeline.StepRun{Step: "later", MaxAttempts: 1}, Cell: "pending"},
	}
	tl := buildTimeline(run, steps, time.UTC)
	if !tl.Start.Equal(at(0)) || !tl.End.Equal(at(200)) {
		t.Fatalf("axis %v – %v, want the earliest attempt's start to the latest end", tl.Start, tl.End)
	}
	rows := map[string]timelineRow{}
	for _, r := range tl.Rows {
		rows[r.Step] = r
	}
	f := rows["flaky"].Bars
	if len(f) != 2 || f[0].Status != "retrying" || f[1].Status != "succeeded" || f[0].X != 500 || f[1].X != 600 || f[0].X+f[0].W >= f[1].X {
		t.Errorf("flaky's bars %+v: want two, apart, in time order at 500 and 600 per mille", f)
	}
	if !strings.Contains(f[0].Label, "attempt 1 retrying, 06:01:40.000–06:01:50.000 (10.0s): xxx") || len(f[0].Label) > 120 {
		t.Errorf("first attempt's label %q: want number, status, times and the start of the error", f[0].Label)
	}
	if m := rows["flaky"].Marks; len(m) != 2 || m[0] != (attemptMark{"retrying", 1}) || m[1] != (attemptMark{"succeeded", 1}) {
		t.Errorf("flaky's marks %+v", m)
	}
	j := rows["job"].Bars
	if len(j) != 1 || j[0].X != 650 || j[0].X+j[0].W+gapW != 1000 || j[0].WaitX != 700 || j[0].Waited() != j[0].X+j[0].W-700 {
		t.Errorf("waiting job's bar %+v: want it from 650 to the axis end, waiting from 700", j)
	}
	if !strings.Contains(j[0].Label, "to now") && !strings.Contains(j[0].Label, "–now") {
		t.Errorf("a running attempt's label %q should end at now", j[0].Label)
	}
	r := rows["rerun"].Bars
	if len(r) != 2 || r[0].Generation != 1 || r[1].Generation != 2 || r[0].X != 0 || !strings.Contains(r[1].Label, "(generation 2)") {
		t.Errorf("re-run step's bars %+v: want both generations", r)
	}
	if len(rows["later"].Bars) != 0 {
		t.Errorf("a step that never ran has bars %+v", rows["later"].Bars)
	}
	for _, row := range tl.Rows {
		for _, b := range row.Bars {
			if b.X < 0 || b.W < minBarW-gapW || b.X+b.W > 1000 {
				t.Errorf("%s: bar %+v outside the axis", row.Step, b)
			}
		}
	}
}
