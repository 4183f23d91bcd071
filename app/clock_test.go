package app

import (
	"bytes"
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// TestWithClockSetsTheRecordedTimes: a run's recorded times (the run's
// creation, start and finish, each step's start and finish) follow the clock
// given with WithClock, not the machine's.
func TestWithClockSetsTheRecordedTimes(t *testing.T) {
	base := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	var ticks atomic.Int64
	clock := func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Millisecond) }
	data := t.TempDir()
	var out, errOut bytes.Buffer
	opts := newOptions([]Option{WithExampleSteps(), WithOutput(&out, &errOut), WithClock(clock)})
	if err := runCLI(context.Background(), []string{"run", "daily", "--file", repoPipelines, "--data", data, "--date", "2026-03-14"}, opts); err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if ticks.Load() == 0 {
		t.Fatal("the injected clock was never read")
	}
	out.Reset()
	if err := runCLI(context.Background(), []string{"status", "daily@2026-03-14", "--json", "--file", repoPipelines, "--data", data}, opts); err != nil {
		t.Fatalf("status: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	var r pipeline.Run
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out.String())
	}
	end := base.Add(time.Duration(ticks.Load()) * time.Millisecond)
	within := func(what string, at time.Time) {
		t.Helper()
		if at.Before(base) || at.After(end) {
			t.Errorf("%s at %s: not on the injected clock (%s .. %s)", what, at, base, end)
		}
	}
	if r.Status != pipeline.RunSucceeded || len(r.Steps) == 0 {
		t.Fatalf("run %s with %d steps, want succeeded:\n%s", r.Status, len(r.Steps), out.String())
	}
	within("run created", r.CreatedAt)
	within("run started", r.StartedAt)
	within("run finished", r.FinishedAt)
	for _, s := range r.Steps {
		within("step "+s.Step+" started", s.StartedAt)
		within("step "+s.Step+" finished", s.FinishedAt)
	}
}
