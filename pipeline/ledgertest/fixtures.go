package ledgertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// uniqueName returns a pipeline name no other subtest (or earlier suite run
// against a shared store) uses.
func uniqueName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random name: %v", err)
	}
	return "lt-" + hex.EncodeToString(b)
}

// at is a fixed instant with nanoseconds (below the microsecond precision some
// backends keep) in a zone other than UTC, offset by d.
func at(d time.Duration) time.Time {
	zone := time.FixedZone("UTC+2", 2*60*60)
	return time.Date(2026, 3, 14, 9, 26, 53, 589793238, zone).Add(d)
}

// farFuture returns the start of a creation-time region of the caller's own,
// later than every region handed out before (it moves 100 times as fast as
// the clock, from the year 2300), so ListRuns without a pipeline filter but
// with Since sees only the caller's runs even in a shared store. Runs in the
// region must lie within a few hundred microseconds of its start.
func farFuture(t *testing.T) time.Time {
	t.Helper()
	elapsed := time.Since(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds()
	start := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	return time.UnixMicro(start + 100*elapsed).UTC()
}

// newRun is a pending run of pipeline p with key k, created at created.
func newRun(p, k string, created time.Time) pipeline.Run {
	return pipeline.Run{
		ID:        pipeline.RunID(p, k),
		Pipeline:  p,
		Key:       k,
		Date:      "2026-03-14",
		Params:    map[string]string{"region": "eu", "mode": "full"},
		Status:    pipeline.RunPending,
		Trigger:   "cli",
		CreatedAt: created,
		UpdatedAt: created,
	}
}

// newSteps returns pending steps with the given names for run runID.
func newSteps(runID string, names ...string) []pipeline.StepRun {
	steps := make([]pipeline.StepRun, len(names))
	for i, n := range names {
		steps[i] = pipeline.StepRun{
			RunID:       runID,
			Step:        n,
			Status:      pipeline.StepPending,
			Generation:  1,
			MaxAttempts: 3,
		}
	}
	return steps
}

// stepNames are deliberately not in lexical order, so a backend that sorts by
// name instead of keeping creation order is caught.
var stepNames = []string{"extract", "b-transform", "a-load", "notify", "c-report"}

// manySteps returns n step names in reverse lexical order.
func manySteps(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("step-%02d", n-1-i)
	}
	return names
}

func mustCreate(ctx context.Context, t *testing.T, l pipeline.Ledger, r pipeline.Run, steps []pipeline.StepRun) pipeline.Run {
	t.Helper()
	stored, created, err := l.CreateRun(ctx, r, steps)
	if err != nil {
		t.Fatalf("CreateRun(%s): %v", r.ID, err)
	}
	if !created {
		t.Fatalf("CreateRun(%s): created=false for a new run", r.ID)
	}
	return stored
}

func mustGetRun(ctx context.Context, t *testing.T, l pipeline.Ledger, id string) pipeline.Run {
	t.Helper()
	r, err := l.GetRun(ctx, id)
	if err != nil {
		t.Fatalf("GetRun(%s): %v", id, err)
	}
	return r
}

func mustGetStep(ctx context.Context, t *testing.T, l pipeline.Ledger, runID, step string) pipeline.StepRun {
	t.Helper()
	s, err := l.GetSteps(ctx, runID, step)
	if err != nil {
		t.Fatalf("GetSteps(%s, %s): %v", runID, step, err)
	}
	if len(s) != 1 {
		t.Fatalf("GetSteps(%s, %s): got %d steps, want 1", runID, step, len(s))
	}
	return s[0]
}

func mustUpdateStep(ctx context.Context, t *testing.T, l pipeline.Ledger, s pipeline.StepRun) pipeline.StepRun {
	t.Helper()
	got, err := l.UpdateStep(ctx, s)
	if err != nil {
		t.Fatalf("UpdateStep(%s/%s, version %d): %v", s.RunID, s.Step, s.Version, err)
	}
	return got
}

func mustUpdateRun(ctx context.Context, t *testing.T, l pipeline.Ledger, r pipeline.Run) pipeline.Run {
	t.Helper()
	got, err := l.UpdateRun(ctx, r)
	if err != nil {
		t.Fatalf("UpdateRun(%s, version %d): %v", r.ID, r.Version, err)
	}
	return got
}

// output is a JSON step output with some nesting.
func output(v string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"rows": 42, "file": %q, "tags": ["a", "b"], "nested": {"ok": true}}`, v))
}
