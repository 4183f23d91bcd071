package ledgertest

import (
	"errors"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

func (s suite) testUpdateStep(t *testing.T) {
	t.Run("compare and swap on Version", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		mustCreate(ctx, t, l, r, newSteps(r.ID, stepNames...))
		v0 := mustGetStep(ctx, t, l, r.ID, "extract")

		claim := v0
		claim.Status = pipeline.StepRunning
		claim.Attempts = 1
		claim.LeaseUntil = at(time.Minute)
		v1 := mustUpdateStep(ctx, t, l, claim)
		if v1.Version == v0.Version {
			t.Fatalf("UpdateStep kept Version %d", v1.Version)
		}
		checkStep(t, "UpdateStep result", v1, claim)

		// A stale writer (same starting version) loses and writes nothing.
		stale := v0
		stale.Status = pipeline.StepFailed
		stale.Error = "stale writer"
		if _, err := l.UpdateStep(ctx, stale); !errors.Is(err, pipeline.ErrConflict) {
			t.Fatalf("UpdateStep with stale Version = %v, want ErrConflict", err)
		}
		got := mustGetStep(ctx, t, l, r.ID, "extract")
		checkStep(t, "after the stale write", got, claim)
		if got.Version != v1.Version {
			t.Errorf("Version after stale write = %d, want %d", got.Version, v1.Version)
		}

		// Versions strictly change on every write, never coming back.
		seen := map[int64]bool{v0.Version: true, v1.Version: true}
		cur := v1
		for i := range 5 {
			next := cur
			next.Attempts = 2 + i
			written := mustUpdateStep(ctx, t, l, next)
			if seen[written.Version] {
				t.Fatalf("write %d: Version %d was used before", i, written.Version)
			}
			seen[written.Version] = true
			if read := mustGetStep(ctx, t, l, r.ID, "extract"); read.Version != written.Version {
				t.Fatalf("write %d: read Version %d, UpdateStep returned %d", i, read.Version, written.Version)
			}
			cur = written
		}
		// Every older version is stale now.
		old := v1
		old.Attempts = 99
		if _, err := l.UpdateStep(ctx, old); !errors.Is(err, pipeline.ErrConflict) {
			t.Fatalf("UpdateStep with an old Version = %v, want ErrConflict", err)
		}
	})

	t.Run("touches neither the run nor other steps", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		mustCreate(ctx, t, l, r, newSteps(r.ID, stepNames...))
		before := mustGetRun(ctx, t, l, r.ID)

		s := before.Steps[1]
		s.Status = pipeline.StepSucceeded
		s.Output = output("x")
		mustUpdateStep(ctx, t, l, s)

		after := mustGetRun(ctx, t, l, r.ID)
		checkRun(t, "run after UpdateStep", after, r)
		if after.Version != before.Version {
			t.Errorf("run Version changed from %d to %d by a step write", before.Version, after.Version)
		}
		for i := range before.Steps {
			if i == 1 {
				checkStep(t, "written step", after.Steps[i], s)
				continue
			}
			checkStep(t, "other step", after.Steps[i], before.Steps[i])
			if after.Steps[i].Version != before.Steps[i].Version {
				t.Errorf("step %s Version changed by a write to %s", before.Steps[i].Step, s.Step)
			}
		}
	})

	t.Run("a missing step is ErrNotFound and is not created", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		mustCreate(ctx, t, l, r, newSteps(r.ID, stepNames...))

		missing := newSteps(r.ID, "missing")[0]
		if _, err := l.UpdateStep(ctx, missing); !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("UpdateStep(missing step) = %v, want ErrNotFound", err)
		}
		if _, err := l.GetSteps(ctx, r.ID, "missing"); !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("GetSteps after UpdateStep(missing) = %v, want ErrNotFound", err)
		}
		if n := len(mustGetRun(ctx, t, l, r.ID).Steps); n != len(stepNames) {
			t.Errorf("run has %d steps after UpdateStep(missing), want %d", n, len(stepNames))
		}

		otherRun := pipeline.RunID(uniqueName(t), "2026-03-14")
		if _, err := l.UpdateStep(ctx, newSteps(otherRun, "extract")[0]); !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("UpdateStep(missing run) = %v, want ErrNotFound", err)
		}
		if _, err := l.GetRun(ctx, otherRun); !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("GetRun after UpdateStep(missing run) = %v, want ErrNotFound", err)
		}
	})
}

func (s suite) testUpdateRun(t *testing.T) {
	t.Run("compare and swap on Version", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		v0 := mustCreate(ctx, t, l, r, newSteps(r.ID, stepNames...))

		running := v0
		running.Status = pipeline.RunRunning
		running.UpdatedAt = at(time.Second)
		v1 := mustUpdateRun(ctx, t, l, running)
		if v1.Version == v0.Version {
			t.Fatalf("UpdateRun kept Version %d", v1.Version)
		}
		checkRun(t, "UpdateRun result", v1, running)

		stale := v0
		stale.Status = pipeline.RunCancelled
		if _, err := l.UpdateRun(ctx, stale); !errors.Is(err, pipeline.ErrConflict) {
			t.Fatalf("UpdateRun with stale Version = %v, want ErrConflict", err)
		}
		got := mustGetRun(ctx, t, l, r.ID)
		checkRun(t, "after the stale write", got, running)
		if got.Version != v1.Version {
			t.Errorf("Version after stale write = %d, want %d", got.Version, v1.Version)
		}

		seen := map[int64]bool{v0.Version: true, v1.Version: true}
		cur := v1
		for i := range 5 {
			next := cur
			next.UpdatedAt = at(time.Duration(i+2) * time.Second)
			written := mustUpdateRun(ctx, t, l, next)
			if seen[written.Version] {
				t.Fatalf("write %d: Version %d was used before", i, written.Version)
			}
			seen[written.Version] = true
			if read := mustGetRun(ctx, t, l, r.ID); read.Version != written.Version {
				t.Fatalf("write %d: read Version %d, UpdateRun returned %d", i, read.Version, written.Version)
			}
			cur = written
		}
	})

	t.Run("does not touch the steps", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		mustCreate(ctx, t, l, r, newSteps(r.ID, stepNames...))
		before := mustGetRun(ctx, t, l, r.ID)

		// The run carries changed steps (and one unknown step); none is written.
		upd := before
		upd.Status = pipeline.RunFailed
		upd.Steps = append(newSteps(r.ID, "intruder"), before.Steps...)
		for i := range upd.Steps {
			upd.Steps[i].Status = pipeline.StepCancelled
			upd.Steps[i].Error = "should not be written"
		}
		mustUpdateRun(ctx, t, l, upd)

		after := mustGetRun(ctx, t, l, r.ID)
		if after.Status != pipeline.RunFailed {
			t.Errorf("run Status = %q, want %q", after.Status, pipeline.RunFailed)
		}
		checkSteps(t, "steps after UpdateRun", after.Steps, before.Steps, true)
	})

	t.Run("a missing run is ErrNotFound and is not created", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		if _, err := l.UpdateRun(ctx, r); !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("UpdateRun(missing) = %v, want ErrNotFound", err)
		}
		if _, err := l.GetRun(ctx, r.ID); !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("GetRun after UpdateRun(missing) = %v, want ErrNotFound", err)
		}
	})
}
