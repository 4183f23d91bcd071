package pipeline_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

func startAndDrain(t *testing.T, h *harness, date string) string {
	t.Helper()
	res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: date})
	if err != nil {
		t.Fatal(err)
	}
	h.drain(50)
	return res.Run.ID
}

func TestForcedRerunRunsAgainAndAPlainDuplicateDoesNot(t *testing.T) {
	h := newHarness(t, chainYAML)
	id := startAndDrain(t, h, "2026-11-23")
	// A plain enqueue of a succeeded step is refused and runs nothing.
	_, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "b"})
	if !errors.Is(err, pipeline.ErrConflict) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("plain enqueue of a succeeded step: %v", err)
	}
	if len(h.queue.take()) != 0 {
		t.Fatal("a refused enqueue queued a task")
	}
	// --force: a new generation, a new task name, and the body runs again;
	// its successors run again too.
	res, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "b", Force: true})
	if err != nil || res.Generation != 2 || res.TaskName != h.orch.TaskName(id, "b", 2) {
		t.Fatalf("forced enqueue = %+v, %v", res, err)
	}
	h.drain(50)
	if h.bodies["a"].runs.Load() != 1 || h.bodies["b"].runs.Load() != 2 || h.bodies["c"].runs.Load() != 2 {
		t.Fatalf("runs a=%d b=%d c=%d, want 1 2 2", h.bodies["a"].runs.Load(), h.bodies["b"].runs.Load(), h.bodies["c"].runs.Load())
	}
	r := h.run(id)
	if r.Status != pipeline.RunSucceeded || stepOf(r, "b").Generation != 2 || stepOf(r, "c").Generation != 2 {
		t.Fatalf("run %s, b gen %d, c gen %d", r.Status, stepOf(r, "b").Generation, stepOf(r, "c").Generation)
	}
	// The old generation's task, delivered late, is stale: nothing runs.
	old, err := h.orch.HandleStep(ctx, pipeline.TaskPayload{RunID: id, Step: "b", Generation: 1, Date: "2026-11-23"}, pipeline.Delivery{})
	if err != nil || old.Outcome != pipeline.OutcomeStaleTask || h.bodies["b"].runs.Load() != 2 {
		t.Fatalf("stale task = %+v, %v", old, err)
	}
}

func TestEnqueueOnlyDoesNotChain(t *testing.T) {
	h := newHarness(t, chainYAML)
	id := startAndDrain(t, h, "2026-11-23")
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "a", Force: true, Only: true}); err != nil {
		t.Fatal(err)
	}
	h.drain(50)
	if h.bodies["a"].runs.Load() != 2 || h.bodies["b"].runs.Load() != 1 {
		t.Fatalf("a=%d b=%d, want a re-run alone", h.bodies["a"].runs.Load(), h.bodies["b"].runs.Load())
	}
	if r := h.run(id); r.Status != pipeline.RunSucceeded {
		t.Fatalf("run = %s", r.Status)
	}
}

func TestEnqueueObeysTheGateAndCreatesAdHocRuns(t *testing.T) {
	h := newHarness(t, chainYAML)
	_, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{Pipeline: "chain", Date: "2026-11-20", Step: "c"})
	if !errors.Is(err, pipeline.ErrNotReady) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("enqueue c before b: %v", err)
	}
	if _, err := h.ledger.GetRun(ctx, "chain@2026-11-20"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("a refused enqueue created the run: %v", err)
	}
	res, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{Pipeline: "chain", Date: "2026-11-20", Step: "a"})
	if err != nil || res.RunID != "chain@2026-11-20" || res.Generation != 1 {
		t.Fatalf("enqueue a = %+v, %v", res, err)
	}
	h.drain(50)
	if r := h.run("chain@2026-11-20"); r.Status != pipeline.RunSucceeded || r.Trigger != "adhoc" {
		t.Fatalf("ad hoc run %s (%s)", r.Status, r.Trigger)
	}
	for _, bad := range []pipeline.EnqueueRequest{
		{RunID: "chain@2026-11-20", Step: "nope"},
		{RunID: "chain@1999-01-01", Step: "a"},
		{Pipeline: "chain", Step: "a"},
		{RunID: "garbage", Step: "a"},
	} {
		if _, err := h.orch.Enqueue(ctx, bad); err == nil || pipeline.ErrorStatus(err) >= 500 {
			t.Errorf("enqueue %+v: %v, want a 4xx", bad, err)
		}
	}
}

func TestResumeRestartsFromTheFailedStep(t *testing.T) {
	h := newHarness(t, chainYAML)
	broken := true
	h.bodies["b"].fail = func(int) error {
		if broken {
			return steps.Permanent(errors.New("schema mismatch"))
		}
		return nil
	}
	id := startAndDrain(t, h, "2026-11-23")
	if r := h.run(id); r.Status != pipeline.RunFailed {
		t.Fatalf("run = %s", r.Status)
	}
	broken = false
	res, err := h.orch.Resume(ctx, id)
	if err != nil || len(res.Enqueued) != 1 || res.Enqueued[0].Step != "b" || res.Enqueued[0].Generation != 2 {
		t.Fatalf("resume = %+v, %v", res, err)
	}
	if r := h.run(id); r.Status != pipeline.RunRunning || r.Error != "" {
		t.Fatalf("run after resume = %s %q", r.Status, r.Error)
	}
	h.drain(50)
	r := h.run(id)
	if r.Status != pipeline.RunSucceeded || h.bodies["a"].runs.Load() != 1 || h.bodies["c"].runs.Load() != 1 {
		t.Fatalf("run %s; a=%d c=%d", r.Status, h.bodies["a"].runs.Load(), h.bodies["c"].runs.Load())
	}
	if n := h.events.count(pipeline.EventRunSucceeded); n != 1 {
		t.Fatalf("run_succeeded notified %d times", n)
	}
	if _, err := h.orch.Resume(ctx, id); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("resume of a succeeded run: %v", err)
	}
}

func TestCancelStopsFurtherSteps(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	first := h.queue.take()[0]
	if _, err := h.orch.HandleStep(ctx, first.Payload, pipeline.Delivery{}); err != nil {
		t.Fatal(err)
	}
	r, err := h.orch.Cancel(ctx, "chain@2026-11-23")
	if err != nil || r.Status != pipeline.RunCancelled {
		t.Fatalf("cancel = %s, %v", r.Status, err)
	}
	if stepOf(r, "b").Status != pipeline.StepCancelled || stepOf(r, "c").Status != pipeline.StepCancelled {
		t.Fatalf("steps after cancel: %+v", r.Steps)
	}
	h.drain(50) // b's task was already queued: delivered, it runs nothing
	if h.bodies["b"].runs.Load() != 0 || h.bodies["c"].runs.Load() != 0 {
		t.Fatal("a step ran after cancel")
	}
	if h.events.count(pipeline.EventRunCancelled) != 1 {
		t.Fatal("cancel not notified once")
	}
	if _, err := h.orch.Cancel(ctx, "chain@2026-11-23"); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("second cancel: %v", err)
	}
}

func TestCancelledRunStopsARetryingStep(t *testing.T) {
	h := newHarness(t, chainYAML)
	h.bodies["a"].fail = func(int) error { return errors.New("flaky") }
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	task := h.queue.take()[0]
	if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{}); err == nil {
		t.Fatal("want a retryable failure")
	}
	if _, err := h.orch.Cancel(ctx, task.Payload.RunID); err != nil {
		t.Fatal(err)
	}
	res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{})
	if err != nil || res.Outcome != pipeline.OutcomeNotRunnable || h.bodies["a"].runs.Load() != 1 {
		t.Fatalf("retry after cancel = %+v, %v (ran %d)", res, err, h.bodies["a"].runs.Load())
	}
}

func TestBackfillRespectsMaxParallelAndIsIdempotent(t *testing.T) {
	h := newHarness(t, chainYAML)
	res, err := h.orch.Backfill(ctx, pipeline.BackfillRequest{Pipeline: "chain", From: "2026-11-01", To: "2026-11-05", MaxParallel: 2})
	if err != nil || len(res.Runs) != 5 || len(res.Launched) != 2 {
		t.Fatalf("backfill = %+v, %v", res, err)
	}
	running, _ := h.ledger.ListRuns(ctx, pipeline.RunFilter{Status: pipeline.RunRunning})
	if len(running) != 2 {
		t.Fatalf("%d running, want 2", len(running))
	}
	// Deliver everything: finishing runs start the next dates, never more
	// than two at once.
	maxRunning := 0
	for range 200 {
		tasks := h.queue.take()
		if len(tasks) == 0 {
			break
		}
		for _, task := range tasks {
			if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{}); err != nil {
				t.Fatal(err)
			}
			running, _ := h.ledger.ListRuns(ctx, pipeline.RunFilter{Status: pipeline.RunRunning})
			maxRunning = max(maxRunning, len(running))
		}
	}
	done, _ := h.ledger.ListRuns(ctx, pipeline.RunFilter{Status: pipeline.RunSucceeded})
	if len(done) != 5 || maxRunning > 2 {
		t.Fatalf("succeeded %d (want 5), max running %d (want <= 2)", len(done), maxRunning)
	}
	again, err := h.orch.Backfill(ctx, pipeline.BackfillRequest{Pipeline: "chain", From: "2026-11-01", To: "2026-11-05", MaxParallel: 2})
	if err != nil || len(again.Launched) != 0 {
		t.Fatalf("repeat = %+v, %v", again, err)
	}
	for _, r := range again.Runs {
		if r.Created || r.Status != pipeline.RunSucceeded {
			t.Fatalf("repeat changed %+v", r)
		}
	}
	if h.bodies["a"].runs.Load() != 5 {
		t.Fatalf("a ran %d times, want 5", h.bodies["a"].runs.Load())
	}
	for _, bad := range []pipeline.BackfillRequest{
		{Pipeline: "chain", From: "2026-11-05", To: "2026-11-01"},
		{Pipeline: "chain", From: "2026-11-01", To: "2028-11-01"},
		{Pipeline: "chain", From: "11/01", To: "2026-11-02"},
		{Pipeline: "chain", From: "2026-11-01", To: "2026-11-02", MaxParallel: 500},
	} {
		if _, err := h.orch.Backfill(ctx, bad); !errors.Is(err, pipeline.ErrInvalid) {
			t.Errorf("backfill %+v: %v, want invalid", bad, err)
		}
	}
}

func TestStatsSuccessRateAndDurations(t *testing.T) {
	h := newHarness(t, chainYAML)
	startAndDrain(t, h, "2026-11-20")
	startAndDrain(t, h, "2026-11-21")
	h.bodies["c"].fail = func(int) error { return steps.Permanent(errors.New("bad")) }
	startAndDrain(t, h, "2026-11-22")
	st, err := h.orch.Stats(ctx, "", h.clock().Add(-24*time.Hour))
	if err != nil || len(st) != 1 {
		t.Fatalf("stats = %+v, %v", st, err)
	}
	p := st[0]
	if p.Runs != 3 || p.Succeeded != 2 || p.Failed != 1 || p.SuccessRate < 0.66 || p.SuccessRate > 0.67 || len(p.Steps) != 3 {
		t.Fatalf("pipeline stats = %+v", p)
	}
	c := p.Steps[2]
	if c.Step != "c" || c.Runs != 3 || c.Failed != 1 || c.SuccessRate < 0.66 || c.SuccessRate > 0.67 {
		t.Fatalf("step c stats = %+v", c)
	}
}

func TestReconcileHealsStuckRuns(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	h.queue.take() // the queue lost a's task, and a's process died mid-step
	got, _ := h.ledger.GetSteps(ctx, "chain@2026-11-23", "a")
	a := got[0]
	a.Status, a.Attempts, a.LeaseUntil = pipeline.StepRunning, 1, h.clock().Add(time.Minute)
	if _, err := h.ledger.UpdateStep(ctx, a); err != nil {
		t.Fatal(err)
	}
	rep, err := h.orch.Reconcile(ctx)
	if err != nil || len(rep.Reenqueued) != 0 || rep.RunsChecked != 1 {
		t.Fatalf("reconcile during a live lease = %+v, %v", rep, err)
	}
	h.advance(2 * time.Minute)
	rep, err = h.orch.Reconcile(ctx)
	if err != nil || len(rep.Reenqueued) != 1 || rep.Reenqueued[0] != "chain@2026-11-23/a" {
		t.Fatalf("reconcile after the lease = %+v, %v", rep, err)
	}
	tasks := h.queue.take()
	if len(tasks) != 1 || tasks[0].Name == h.orch.TaskName("chain@2026-11-23", "a", 1) {
		t.Fatalf("sweeper tasks %+v: want one with a fresh name", tasks)
	}
	// Idempotent: a second tick enqueues the same name (deduplicated).
	if _, err := h.orch.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.queue.take()) != 0 {
		t.Fatal("a second tick queued another task")
	}
	h.queue.tasks = tasks
	h.drain(50)
	if r := h.run("chain@2026-11-23"); r.Status != pipeline.RunSucceeded || stepOf(r, "a").Attempts != 2 {
		t.Fatalf("run %s, a attempts %d", r.Status, stepOf(r, "a").Attempts)
	}
}

func TestReconcileFailsOutOfAttemptsAndOverdueRuns(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	h.queue.take()
	got, _ := h.ledger.GetSteps(ctx, "chain@2026-11-23", "a")
	a := got[0]
	a.Status, a.Attempts, a.LeaseUntil = pipeline.StepRunning, 3, h.clock().Add(-time.Second)
	if _, err := h.ledger.UpdateStep(ctx, a); err != nil {
		t.Fatal(err)
	}
	rep, err := h.orch.Reconcile(ctx)
	if err != nil || len(rep.FailedSteps) != 1 {
		t.Fatalf("reconcile = %+v, %v", rep, err)
	}
	if r := h.run("chain@2026-11-23"); r.Status != pipeline.RunFailed || h.events.count(pipeline.EventRunFailed) != 1 {
		t.Fatalf("run %s", r.Status)
	}

	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-24"}); err != nil {
		t.Fatal(err)
	}
	h.advance(25 * time.Hour) // past the default max_run_duration
	rep, err = h.orch.Reconcile(ctx)
	if err != nil || len(rep.FailedRuns) != 1 || rep.FailedRuns[0] != "chain@2026-11-24" {
		t.Fatalf("reconcile overdue = %+v, %v", rep, err)
	}
	if r := h.run("chain@2026-11-24"); r.Status != pipeline.RunFailed || !strings.Contains(r.Error, "max_run_duration") {
		t.Fatalf("overdue run %s %q", r.Status, r.Error)
	}
}

func TestReconcileSendsOwedNotificationsAndLostSuccessors(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	task := h.queue.take()[0]
	if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{}); err != nil {
		t.Fatal(err)
	}
	// b's task never made it (a crash between a's success and its enqueue).
	for _, lost := range h.queue.take() {
		delete(h.queue.names, lost.Name)
	}
	rep, err := h.orch.Reconcile(ctx)
	if err != nil || len(rep.Reenqueued) != 1 || rep.Reenqueued[0] != "chain@2026-11-23/b" {
		t.Fatalf("reconcile = %+v, %v", rep, err)
	}
	h.drain(50)
	r := h.run("chain@2026-11-23")
	if r.Status != pipeline.RunSucceeded {
		t.Fatalf("run = %s", r.Status)
	}
	r.Notify, r.Steps = pipeline.NotifyPending, nil
	if _, err := h.ledger.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	before := h.events.count(pipeline.EventRunSucceeded)
	h.advance(time.Minute)
	rep, err = h.orch.Reconcile(ctx)
	if err != nil || len(rep.Notified) != 1 || h.events.count(pipeline.EventRunSucceeded) != before+1 {
		t.Fatalf("owed notification: %+v, %v", rep, err)
	}
	if rep, _ := h.orch.Reconcile(ctx); len(rep.Notified) != 0 {
		t.Fatal("notification sent twice")
	}
}
