package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// A run whose steps have all ended but whose finish write was lost (it is
// still running) is finished by the sweeper with the right status, and its
// final notification is sent once.
func TestSweeperFinishesARunWhoseStepsAllEnded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		failC  bool
		status pipeline.RunStatus
		event  pipeline.EventKind
	}{
		{"all succeeded", false, pipeline.RunSucceeded, pipeline.EventRunSucceeded},
		{"one failed", true, pipeline.RunFailed, pipeline.EventRunFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
				if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
					t.Fatal(err)
				}
				h.drain(20)
				id := "chain@2026-11-23"
				r := h.run(id)
				if tc.failC {
					c := stepOf(r, "c")
					c.Status, c.Error = pipeline.StepFailed, "boom"
					if _, err := h.ledger.UpdateStep(ctx, c); err != nil {
						t.Fatal(err)
					}
				}
				// The finish write was lost: the run is still running, nothing owed.
				r.Status, r.Error, r.FinishedAt, r.Notify, r.Steps = pipeline.RunRunning, "", time.Time{}, pipeline.NotifyNone, nil
				if _, err := h.ledger.UpdateRun(ctx, r); err != nil {
					t.Fatal(err)
				}
				before := h.events.count(tc.event)
				rep, err := h.orch.Reconcile(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got := h.run(id)
				if got.Status != tc.status || got.FinishedAt.IsZero() {
					t.Fatalf("run %s (finished %v), want %s; report %+v", got.Status, got.FinishedAt, tc.status, rep)
				}
				if tc.failC && got.Error == "" {
					t.Fatal("failed run has no error")
				}
				if n := h.events.count(tc.event) - before; n != 1 || got.Notify != pipeline.NotifyDone {
					t.Fatalf("%s sent %d times (notify %q), want once", tc.event, n, got.Notify)
				}
				if slices.Contains(rep.Finished, id) == tc.failC || slices.Contains(rep.FailedRuns, id) != tc.failC {
					t.Fatalf("report does not say what was done: %+v", rep)
				}
				h.advance(time.Hour)
				if _, err := h.orch.Reconcile(ctx); err != nil {
					t.Fatal(err)
				}
				if n := h.events.count(tc.event) - before; n != 1 {
					t.Fatalf("%s sent %d times after another sweep, want once", tc.event, n)
				}
			})
		})
	}
}

// A 60-day backfill with max_parallel 1 starts at its first date and runs its
// dates in order.
func TestBackfillLaunchesOldestFirst(t *testing.T) {
	const oneYAML = `
name: chain
time_zone: Europe/Paris
steps:
  - {name: a, kind: a, after: []}
`
	onEachLedger(t, oneYAML, func(t *testing.T, h *harness) {
		res, err := h.orch.Backfill(ctx, pipeline.BackfillRequest{Pipeline: "chain", From: "2026-01-01", To: "2026-03-01", MaxParallel: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Runs) != 60 || !slices.Equal(res.Launched, []string{"chain@2026-01-01"}) {
			t.Fatalf("backfill of %d runs launched %v, want [chain@2026-01-01]", len(res.Runs), res.Launched)
		}
		// The order the runs' bodies ran in (drain delivers one task at a
		// time), not the order of their notifications, which are sent in the
		// background and may overtake each other.
		var started []string
		h.bodies["a"].seen = func(in steps.Input) { started = append(started, in.RunID) }
		h.drain(60 + 10)
		if len(started) != 60 || !slices.IsSorted(started) || started[0] != "chain@2026-01-01" {
			t.Fatalf("runs started in this order (%d): %v", len(started), started)
		}
		done, err := h.ledger.ListRuns(ctx, pipeline.RunFilter{Status: pipeline.RunSucceeded})
		if err != nil || len(done) != 60 {
			t.Fatalf("%d runs succeeded (%v), want 60", len(done), err)
		}
	})
}

// A run whose start crashed before its roots were enqueued is launched by
// the sweeper even behind more than a page of newer pending runs.
func TestSweeperLaunchesACrashedStartBehindManyPendingRuns(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		h.queue.failing = 1 // the start's enqueue fails: the run stays pending
		if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2025-12-01"}); err == nil {
			t.Fatal("start with a failing queue succeeded")
		}
		crashed := "chain@2025-12-01"
		if r := h.run(crashed); r.Status != pipeline.RunPending {
			t.Fatalf("crashed start left the run %s, want pending", r.Status)
		}
		// 70 newer pending runs: a backfill blocked behind a running run of it.
		if _, err := h.orch.Backfill(ctx, pipeline.BackfillRequest{Pipeline: "chain", From: "2026-01-01", To: "2026-03-11", MaxParallel: 1}); err != nil {
			t.Fatal(err)
		}
		h.advance(2 * time.Minute)
		rep, err := h.orch.Reconcile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(rep.Launched, crashed) {
			t.Fatalf("the crashed start was not launched: %v", rep.Launched)
		}
		if r := h.run(crashed); r.Status != pipeline.RunRunning {
			t.Fatalf("crashed start is %s after the sweep, want running", r.Status)
		}
	})
}

// A run re-run days after it was created, whose final notification failed,
// is notified by the sweeper: owed notifications are found by finish time.
func TestSweeperSendsTheOwedNotificationOfAnOldRunReRunLater(t *testing.T) {
	var down atomic.Bool
	flaky := notifierFunc(func(_ context.Context, e pipeline.Event) error {
		if down.Load() {
			return errors.New("discord is down")
		}
		return nil
	})
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
			t.Fatal(err)
		}
		h.drain(20)
		id := "chain@2026-11-23"
		h.advance(72 * time.Hour)
		down.Store(true)
		if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "c", Force: true}); err != nil {
			t.Fatal(err)
		}
		h.drain(20)
		r := h.run(id)
		if r.Status != pipeline.RunSucceeded || r.Notify != pipeline.NotifyPending {
			t.Fatalf("re-run ended %s with notify %q, want succeeded and owed", r.Status, r.Notify)
		}
		down.Store(false)
		h.advance(time.Minute)
		before := h.events.count(pipeline.EventRunSucceeded)
		rep, err := h.orch.Reconcile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(rep.Notified, id) || h.events.count(pipeline.EventRunSucceeded) != before+1 {
			t.Fatalf("owed notification of the re-run not sent: %+v", rep)
		}
		if got := h.run(id).Notify; got != pipeline.NotifyDone {
			t.Fatalf("notify %q after the sweep, want done", got)
		}
	}, flaky)
}
