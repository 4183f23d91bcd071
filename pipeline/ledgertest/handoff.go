package ledgertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// handOffLedger is a ledger with the hand-off capability.
type handOffLedger interface {
	pipeline.Ledger
	pipeline.HandOff
}

// testHandOff checks the optional pipeline.HandOff capability, on ledgers
// that offer it (local mode's store); others skip it.
func (s suite) testHandOff(t *testing.T) {
	probe := s.newLedger(t)
	if _, ok := probe.(handOffLedger); !ok {
		t.Skip("the ledger does not implement pipeline.HandOff")
	}
	// setup creates a run with steps extract -> b-transform and claims
	// extract; it returns extract succeeded (to be written) and the task of
	// b-transform.
	setup := func(t *testing.T) (context.Context, handOffLedger, pipeline.StepRun, pipeline.Task) {
		ctx, l := t.Context(), s.newLedger(t).(handOffLedger)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		mustCreate(ctx, t, l, r, newSteps(r.ID, "extract", "b-transform"))
		claim := mustGetStep(ctx, t, l, r.ID, "extract")
		claim.Status, claim.Attempts, claim.LeaseUntil = pipeline.StepRunning, 1, at(time.Minute)
		claimed := mustUpdateStep(ctx, t, l, claim)
		done := claimed
		done.Status, done.LeaseUntil, done.FinishedAt = pipeline.StepSucceeded, time.Time{}, at(time.Second)
		task := pipeline.Task{Name: "ho-" + uniqueName(t),
			Payload: pipeline.TaskPayload{RunID: r.ID, Step: "b-transform", Generation: 1, Date: r.Date}}
		return ctx, l, done, task
	}
	running := func(succ pipeline.StepRun) (pipeline.StepRun, bool) {
		if succ.Status != pipeline.StepPending {
			return pipeline.StepRun{}, false
		}
		succ.Status, succ.Attempts, succ.LeaseUntil, succ.StartedAt = pipeline.StepRunning, 1, at(time.Minute), at(time.Second)
		return succ, true
	}

	t.Run("claims the successor in the transition's commit", func(t *testing.T) {
		ctx, l, done, task := setup(t)
		before := mustGetStep(ctx, t, l, done.RunID, "b-transform")
		stored, claimed, err := l.TransitionHandOff(ctx, done, []pipeline.Task{task}, pipeline.Task{}, running)
		if err != nil {
			t.Fatalf("TransitionHandOff: %v", err)
		}
		checkStep(t, "predecessor as returned", stored, done)
		if got := mustGetStep(ctx, t, l, done.RunID, "extract"); got.Version != stored.Version || got.Status != pipeline.StepSucceeded {
			t.Fatalf("predecessor stored %s version %d, returned version %d", got.Status, got.Version, stored.Version)
		}
		if len(claimed) != 1 {
			t.Fatalf("claimed %d successors, want 1", len(claimed))
		}
		got := mustGetStep(ctx, t, l, done.RunID, "b-transform")
		if got.Status != pipeline.StepRunning || got.Attempts != 1 || !got.LeaseUntil.Equal(at(time.Minute)) {
			t.Fatalf("successor stored %s, attempt %d, lease %s; want running, 1, %s", got.Status, got.Attempts, got.LeaseUntil, at(time.Minute))
		}
		if got.Version != claimed[0].Version || got.Version == before.Version {
			t.Fatalf("successor version %d, returned %d, before %d: the claim returns the stored version, a new one", got.Version, claimed[0].Version, before.Version)
		}
		// The returned claim is the record a compare-and-swap goes on from.
		next := claimed[0]
		next.Status = pipeline.StepSucceeded
		mustUpdateStep(ctx, t, l, next)
	})

	t.Run("a declined claim writes nothing of the successor", func(t *testing.T) {
		ctx, l, done, task := setup(t)
		before := mustGetStep(ctx, t, l, done.RunID, "b-transform")
		decline := func(pipeline.StepRun) (pipeline.StepRun, bool) { return pipeline.StepRun{}, false }
		if _, claimed, err := l.TransitionHandOff(ctx, done, []pipeline.Task{task}, pipeline.Task{}, decline); err != nil || len(claimed) != 0 {
			t.Fatalf("TransitionHandOff = %d claimed, %v; want none, nil", len(claimed), err)
		}
		if got := mustGetStep(ctx, t, l, done.RunID, "b-transform"); got.Version != before.Version || got.Status != pipeline.StepPending {
			t.Fatalf("successor %s version %d, want pending version %d", got.Status, got.Version, before.Version)
		}
	})

	t.Run("the claim is decided on the successor as stored at the commit", func(t *testing.T) {
		ctx, l, done, task := setup(t)
		succ := mustGetStep(ctx, t, l, done.RunID, "b-transform")
		succ.Status = pipeline.StepCancelled
		cancelled := mustUpdateStep(ctx, t, l, succ)
		var seen pipeline.StepRun
		spy := func(s pipeline.StepRun) (pipeline.StepRun, bool) { seen = s; return running(s) }
		if _, claimed, err := l.TransitionHandOff(ctx, done, []pipeline.Task{task}, pipeline.Task{}, spy); err != nil || len(claimed) != 0 {
			t.Fatalf("TransitionHandOff = %d claimed, %v; want none, nil", len(claimed), err)
		}
		if seen.Status != pipeline.StepCancelled || seen.Version != cancelled.Version {
			t.Fatalf("claim saw %s version %d, want the stored cancelled version %d", seen.Status, seen.Version, cancelled.Version)
		}
		if got := mustGetStep(ctx, t, l, done.RunID, "b-transform"); got.Status != pipeline.StepCancelled {
			t.Fatalf("successor %s, want cancelled", got.Status)
		}
	})

	t.Run("a lost compare-and-swap claims nothing", func(t *testing.T) {
		ctx, l, done, task := setup(t)
		stale := done
		stale.Version = done.Version + 1000
		_, claimed, err := l.TransitionHandOff(ctx, stale, []pipeline.Task{task}, pipeline.Task{}, running)
		if !errors.Is(err, pipeline.ErrConflict) || len(claimed) != 0 {
			t.Fatalf("TransitionHandOff with a stale version = %d claimed, %v; want none, ErrConflict", len(claimed), err)
		}
		if got := mustGetStep(ctx, t, l, done.RunID, "b-transform"); got.Status != pipeline.StepPending {
			t.Fatalf("successor %s after a lost transition, want pending", got.Status)
		}
		if got := mustGetStep(ctx, t, l, done.RunID, "extract"); got.Status != pipeline.StepRunning {
			t.Fatalf("predecessor %s after a lost transition, want running", got.Status)
		}
	})

	t.Run("a task of a missing step claims nothing and writes the rest", func(t *testing.T) {
		ctx, l, done, task := setup(t)
		task.Payload.Step = "no-such-step"
		_, claimed, err := l.TransitionHandOff(ctx, done, []pipeline.Task{task}, pipeline.Task{}, running)
		if err != nil || len(claimed) != 0 {
			t.Fatalf("TransitionHandOff = %d claimed, %v; want none, nil", len(claimed), err)
		}
		if got := mustGetStep(ctx, t, l, done.RunID, "extract"); got.Status != pipeline.StepSucceeded {
			t.Fatalf("predecessor %s, want succeeded", got.Status)
		}
	})
}
