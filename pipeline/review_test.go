package pipeline_test

import (
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// A duplicate delivery of a re-run step's task must not re-run its successors
// again (each duplicate used to start another cascade).
func TestDuplicateOfAReRunDoesNotCascade(t *testing.T) {
	h := newHarness(t, chainYAML)
	id := startAndDrain(t, h, "2026-11-23")
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "b", Force: true}); err != nil {
		t.Fatal(err)
	}
	h.drain(50)
	dup := pipeline.TaskPayload{RunID: id, Step: "b", Generation: 2, Date: "2026-11-23"}
	for range 3 {
		res, err := h.orch.HandleStep(ctx, dup, pipeline.Delivery{})
		if err != nil || res.Outcome != pipeline.OutcomeAlreadyDone {
			t.Fatalf("duplicate = %+v, %v", res, err)
		}
		h.drain(50)
	}
	if b, c := h.bodies["b"].runs.Load(), h.bodies["c"].runs.Load(); b != 2 || c != 2 {
		t.Fatalf("b ran %d, c ran %d; want 2 and 2", b, c)
	}
}

// max_run_duration counts from when a run (re)started, not from its creation:
// a re-run of an old run is not failed by the sweeper.
func TestReopenedOldRunIsNotFailedAsOverdue(t *testing.T) {
	h := newHarness(t, chainYAML)
	id := startAndDrain(t, h, "2026-11-23")
	h.advance(72 * time.Hour)
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "c", Force: true}); err != nil {
		t.Fatal(err)
	}
	rep, err := h.orch.Reconcile(ctx)
	if err != nil || len(rep.FailedRuns) != 0 {
		t.Fatalf("reconcile = %+v, %v", rep, err)
	}
	h.drain(50)
	if r := h.run(id); r.Status != pipeline.RunSucceeded {
		t.Fatalf("re-run = %s %q", r.Status, r.Error)
	}
}

func TestBackfillRunsStartedLaterAreNotOverdue(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Backfill(ctx, pipeline.BackfillRequest{Pipeline: "chain", From: "2026-11-01", To: "2026-11-02", MaxParallel: 1}); err != nil {
		t.Fatal(err)
	}
	h.advance(48 * time.Hour) // the first date takes two days
	// The first run is overdue (it started two days ago)...
	rep, err := h.orch.Reconcile(ctx)
	if err != nil || len(rep.FailedRuns) != 1 || rep.FailedRuns[0] != "chain@2026-11-01" {
		t.Fatalf("reconcile = %+v, %v", rep, err)
	}
	// ...the second just started, and is not.
	rep, err = h.orch.Reconcile(ctx)
	if err != nil || len(rep.FailedRuns) != 0 {
		t.Fatalf("second reconcile = %+v, %v", rep, err)
	}
	if r := h.run("chain@2026-11-02"); r.Status != pipeline.RunRunning {
		t.Fatalf("second date = %s", r.Status)
	}
}

func TestResumeAfterCancelRunsToTheEnd(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	first := h.queue.take()[0]
	if _, err := h.orch.HandleStep(ctx, first.Payload, pipeline.Delivery{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.orch.Cancel(ctx, "chain@2026-11-23"); err != nil {
		t.Fatal(err)
	}
	h.drain(50)
	if _, err := h.orch.Resume(ctx, "chain@2026-11-23"); err != nil {
		t.Fatal(err)
	}
	h.drain(50)
	r := h.run("chain@2026-11-23")
	if r.Status != pipeline.RunSucceeded || h.bodies["c"].runs.Load() != 1 {
		t.Fatalf("after resume: %s, c ran %d", r.Status, h.bodies["c"].runs.Load())
	}
}

// A delivery that failed a step but crashed before failing the run is healed
// by the retry (and by the sweeper): the run fails and is notified.
func TestFailedStepWithARunningRunIsHealed(t *testing.T) {
	for _, via := range []string{"retry", "sweeper"} {
		t.Run(via, func(t *testing.T) {
			h := newHarness(t, chainYAML)
			if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
				t.Fatal(err)
			}
			task := h.queue.take()[0]
			got, _ := h.ledger.GetSteps(ctx, task.Payload.RunID, "a")
			a := got[0]
			a.Status, a.Attempts, a.Error = pipeline.StepFailed, 1, "boom"
			if _, err := h.ledger.UpdateStep(ctx, a); err != nil {
				t.Fatal(err)
			}
			if via == "retry" {
				if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{}); err != nil {
					t.Fatal(err)
				}
			} else if _, err := h.orch.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			if r := h.run(task.Payload.RunID); r.Status != pipeline.RunFailed || h.events.count(pipeline.EventRunFailed) != 1 {
				t.Fatalf("run %s, run_failed events %d", r.Status, h.events.count(pipeline.EventRunFailed))
			}
		})
	}
}

func TestSweeperLeavesAnOnlyRunAlone(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{Pipeline: "chain", Date: "2026-11-20", Step: "a", Only: true}); err != nil {
		t.Fatal(err)
	}
	h.drain(50)
	if _, err := h.orch.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	h.drain(50)
	if h.bodies["a"].runs.Load() != 1 || h.bodies["b"].runs.Load() != 0 {
		t.Fatalf("a=%d b=%d: --only was undone by the sweeper", h.bodies["a"].runs.Load(), h.bodies["b"].runs.Load())
	}
	// A plain enqueue afterwards chains on as usual.
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: "chain@2026-11-20", Step: "b"}); err != nil {
		t.Fatal(err)
	}
	h.drain(50)
	if r := h.run("chain@2026-11-20"); r.Status != pipeline.RunSucceeded {
		t.Fatalf("run = %s", r.Status)
	}
}

func TestCancelDuringAReRunCascadeStopsIt(t *testing.T) {
	h := newHarness(t, chainYAML)
	id := startAndDrain(t, h, "2026-11-23")
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "b", Force: true}); err != nil {
		t.Fatal(err)
	}
	task := h.queue.take()[0]
	// b's re-run is in flight when the operator cancels: c (succeeded) is
	// left alone by Cancel, and b's success would start c again.
	started := make(chan struct{})
	release := make(chan struct{})
	h.bodies["b"].fail = func(int) error { close(started); <-release; return nil }
	done := make(chan error, 1)
	go func() { _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{}); done <- err }()
	<-started
	if _, err := h.orch.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.drain(50)
	if c := h.bodies["c"].runs.Load(); c != 1 {
		t.Fatalf("c ran %d times; the cascade went on after cancel", c)
	}
	if r := h.run(id); r.Status != pipeline.RunCancelled {
		t.Fatalf("run = %s", r.Status)
	}
}

// The sweeper pages through running runs: an old stuck run behind more than
// a page of newer ones is still reached.
func TestReconcileReachesOldRunsBehindAFullPage(t *testing.T) {
	h := newHarness(t, chainYAML)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 60 {
		if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: base.AddDate(0, 0, i).Format(time.DateOnly)}); err != nil {
			t.Fatal(err)
		}
	}
	h.queue.take()
	oldest := "chain@2026-01-01"
	got, _ := h.ledger.GetSteps(ctx, oldest, "a")
	a := got[0]
	a.Status, a.Attempts, a.LeaseUntil = pipeline.StepRunning, 1, h.clock().Add(-time.Second)
	if _, err := h.ledger.UpdateStep(ctx, a); err != nil {
		t.Fatal(err)
	}
	rep, err := h.orch.Reconcile(ctx)
	if err != nil || rep.RunsChecked != 60 {
		t.Fatalf("reconcile checked %d runs (%v), want 60", rep.RunsChecked, err)
	}
	found := false
	for _, name := range rep.Reenqueued {
		found = found || name == oldest+"/a"
	}
	if !found {
		t.Fatalf("the oldest run's expired lease was not swept: %v", rep.Reenqueued)
	}
}
