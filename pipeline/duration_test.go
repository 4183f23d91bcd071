package pipeline_test

import (
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// TestForcedRerunWeeksLaterKeepsDurationsSane: re-running a step of an old
// run neither stretches the run's duration to weeks nor skews stats.
func TestForcedRerunWeeksLaterKeepsDurationsSane(t *testing.T) {
	h := newHarness(t, chainYAML)
	id := startAndDrain(t, h, "2026-11-20")
	before, err := h.orch.Stats(ctx, "chain", h.clock().Add(-24*time.Hour))
	if err != nil || len(before) != 1 {
		t.Fatalf("stats = %+v, %v", before, err)
	}
	h.advance(4 * 7 * 24 * time.Hour)
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "c", Force: true}); err != nil {
		t.Fatal(err)
	}
	h.drain(50)
	r := h.run(id)
	if r.Status != pipeline.RunSucceeded || stepOf(r, "c").Generation != 2 {
		t.Fatalf("run %s, c gen %d", r.Status, stepOf(r, "c").Generation)
	}
	// The run's duration is its latest start (the re-run) to its finish.
	if d := r.Duration(); d <= 0 || d > time.Minute {
		t.Errorf("run duration after a re-run 4 weeks later = %s, want the re-run's few milliseconds", d)
	}
	var sum time.Duration
	for _, s := range r.Steps {
		sum += s.Duration()
	}
	after, err := h.orch.Stats(ctx, "chain", r.CreatedAt.Add(-time.Hour))
	if err != nil || len(after) != 1 {
		t.Fatalf("stats = %+v, %v", after, err)
	}
	// Stats count the work of the steps (each one's last attempt), not the
	// calendar time between a run's creation and its last finish.
	if got, want := after[0].AvgMillis, float64(sum.Microseconds())/1000; got != want || got > 1000 {
		t.Errorf("stats avg_ms = %v, want the sum of step durations %v", got, want)
	}
	if before[0].AvgMillis <= 0 {
		t.Errorf("stats before the re-run: avg_ms = %v", before[0].AvgMillis)
	}
}

func TestRunDuration(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		run  pipeline.Run
		want time.Duration
	}{
		{"unfinished", pipeline.Run{CreatedAt: t0, StartedAt: t0}, 0},
		{"launched and finished", pipeline.Run{CreatedAt: t0, StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(8 * time.Second)}, 7 * time.Second},
		{"re-run weeks later", pipeline.Run{CreatedAt: t0, StartedAt: t0.Add(28 * 24 * time.Hour), FinishedAt: t0.Add(28*24*time.Hour + 7*time.Millisecond)}, 7 * time.Millisecond},
		{"cancelled before launch", pipeline.Run{CreatedAt: t0, FinishedAt: t0.Add(time.Minute)}, time.Minute},
		{"finish before start (clocks of two instances)", pipeline.Run{CreatedAt: t0, StartedAt: t0.Add(time.Second), FinishedAt: t0}, 0},
	} {
		if got := tc.run.Duration(); got != tc.want {
			t.Errorf("%s: Duration = %s, want %s", tc.name, got, tc.want)
		}
	}
}
