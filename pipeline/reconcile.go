package pipeline

import (
	"context"
	"fmt"
	"time"
)

// Reconcile bounds: one call does a bounded amount of work; the next tick
// (every few minutes) continues.
const (
	reconcileMaxRuns = 50
	// reconcileMaxPages bounds the pages of reconcileMaxRuns runs one call
	// reads, newest first, so that old stuck runs are reached too.
	reconcileMaxPages = 10
	// staleRetry is how long a step may sit in "retrying" before the sweeper
	// assumes its task is gone (e.g. the queue gave up) and enqueues it again.
	staleRetry = 15 * time.Minute
	// staleCheck is how long an asynchronous step's check may be overdue
	// before the sweeper assumes its task is gone and queues the next one.
	staleCheck = 5 * time.Minute
	// owedLookback bounds the search for ended runs whose notification is
	// owed, by finish time: a run that ended (or ended anew after a re-run)
	// within it is reached however long ago it was created.
	owedLookback = 48 * time.Hour
)

// ReconcileReport says what a sweep did.
type ReconcileReport struct {
	RunsChecked int      `json:"runs_checked"`
	Reenqueued  []string `json:"reenqueued"`   // run/step
	FailedSteps []string `json:"failed_steps"` // run/step
	FailedRuns  []string `json:"failed_runs"`
	Finished    []string `json:"finished"` // runs whose steps had all succeeded
	Notified    []string `json:"notified"`
	Launched    []string `json:"launched"`
	Errors      []string `json:"errors,omitempty"`
	// Alerts lists the schedule alerts sent (missed starts, late runs).
	Alerts []string `json:"alerts"`
}

// Reconcile is the stuck-run sweeper, meant for a Scheduler tick every few
// minutes. For running runs it finishes a run whose steps have all ended (its
// finish was lost), re-enqueues a step whose lease expired with attempts left
// (and fails it when none are left), re-enqueues ready steps that were never
// enqueued (or whose task the queue dropped), and fails runs older than their
// pipeline's max_run_duration. It also sends owed final notifications (runs
// that ended within owedLookback, by finish time) and launches pending runs
// (backfill, oldest first) within their limit.
//
// Its work per call is bounded: each of the three listings (running runs,
// owed notifications, pending runs) reads at most reconcileMaxPages pages of
// reconcileMaxRuns runs; the next tick continues. It is idempotent: task
// names are deterministic per attempt.
func (o *Orchestrator) Reconcile(ctx context.Context) (ReconcileReport, error) {
	rep := ReconcileReport{Reenqueued: []string{}, FailedSteps: []string{}, FailedRuns: []string{}, Finished: []string{}, Notified: []string{}, Launched: []string{}}
	err := o.pages(ctx, RunFilter{Status: RunRunning}, func(r Run) bool {
		rep.RunsChecked++
		if err := o.reconcileRun(ctx, r.ID, &rep); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
		return true
	})
	if err != nil {
		return rep, err
	}
	var owed []Run
	err = o.pages(ctx, RunFilter{NotifyPending: true, Since: o.now().Add(-owedLookback), OldestFirst: true}, func(r Run) bool {
		if o.owed(r) {
			owed = append(owed, r)
		}
		return true
	})
	if err != nil {
		return rep, err
	}
	for _, r := range owed {
		full, err := o.ledger.GetRun(ctx, r.ID)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			continue
		}
		if !o.owed(full) {
			continue // sent meanwhile
		}
		steps := full.Steps
		full.Steps = nil
		o.sendFinalNow(ctx, full, steps)
		rep.Notified = append(rep.Notified, r.ID)
	}
	launched, err := o.launchPending(ctx)
	rep.Launched = append(rep.Launched, launched...)
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	sched := o.checkSchedules(ctx, o.now())
	rep.Alerts = sched.Alerts
	rep.Errors = append(rep.Errors, sched.Errors...)
	return rep, nil
}

// pages calls fn for the runs matching f, in f's order, reading at most
// reconcileMaxPages pages of f.Limit runs (reconcileMaxRuns if unset), until
// fn returns false.
func (o *Orchestrator) pages(ctx context.Context, f RunFilter, fn func(Run) bool) error {
	if f.Limit <= 0 {
		f.Limit = reconcileMaxRuns
	}
	for range reconcileMaxPages {
		runs, err := o.ledger.ListRuns(ctx, f)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		for _, r := range runs {
			if !fn(r) {
				return nil
			}
		}
		if len(runs) < f.Limit {
			return nil
		}
		f = f.Next(runs[len(runs)-1])
	}
	return nil
}

// settled is what a running run whose steps have all ended should become,
// decided from its steps alone: failed when a step failed (a failed step
// always fails its run), succeeded when every step succeeded or was skipped.
// ok is false while a step is still to run (or was cancelled: an operator's
// resume decides).
func settled(steps []StepRun) (status RunStatus, msg string, ok bool) {
	if len(steps) == 0 {
		return "", "", false
	}
	done := true
	for _, s := range steps {
		switch s.Status {
		case StepFailed:
			return RunFailed, fmt.Sprintf("step %s failed: %s", s.Step, s.Error), true
		case StepSucceeded, StepSkipped:
		default:
			done = false
		}
	}
	if !done {
		return "", "", false
	}
	return RunSucceeded, "", true
}

func (o *Orchestrator) reconcileRun(ctx context.Context, runID string, rep *ReconcileReport) error {
	r, err := o.ledger.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("reconcile %s: %w", runID, err)
	}
	def, gerr := o.graphForRun(r) // the run's own graph, not the loaded one
	status, msg, ok := settled(r.Steps)
	if ok && status == RunSucceeded && gerr == nil && !runDone(def.Graph, r.Steps) {
		// Every step succeeded, but one ran on an input since superseded:
		// not finished; the step loop below runs it again.
		ok = false
	}
	if ok {
		// Every step has ended but the run's finish was lost (a crash or a
		// failed write after the last step): finish it, and notify.
		if err := o.finishRunFrom(ctx, r, status, msg); err != nil {
			return err
		}
		if status == RunFailed {
			rep.FailedRuns = append(rep.FailedRuns, runID)
		} else {
			rep.Finished = append(rep.Finished, runID)
		}
		return nil
	}
	if gerr != nil {
		return nil // an old run of a pipeline no longer loaded: leave it alone
	}
	now := o.now().UTC()
	started := r.StartedAt
	if started.IsZero() {
		started = r.CreatedAt
	}
	if now.Sub(started) > def.MaxRunDuration {
		msg := fmt.Sprintf("run exceeded max_run_duration %s (started %s)", def.MaxRunDuration, started.Format(time.RFC3339))
		if err := o.failOverdue(ctx, r, msg); err != nil {
			return err
		}
		rep.FailedRuns = append(rep.FailedRuns, runID)
		return nil
	}
	byName := map[string]StepRun{}
	for _, s := range r.Steps {
		byName[s.Step] = s
	}
	for _, sd := range def.Steps {
		s, ok := byName[sd.Name]
		if !ok {
			continue
		}
		ready := true
		for _, a := range sd.After {
			if byName[a].Status != StepSucceeded {
				ready = false
			}
		}
		name := runID + "/" + sd.Name
		switch {
		case s.Status == StepRunning && !now.Before(s.LeaseUntil) && def.isAsync(sd.Name):
			// An asynchronous start whose state was never recorded (the
			// process died after Start): its delivery starts the same
			// attempt again, adopting the remote work, or fails the step
			// once its timeout has passed (decide), whatever the attempts
			// left. A name per expired lease: each crash gets one sweep.
			if err := o.sweepEnqueue(ctx, def, r, s, fmt.Sprintf("-sweep-a%d-l%d", s.Attempts, s.LeaseUntil.Unix())); err != nil {
				return err
			}
			rep.Reenqueued = append(rep.Reenqueued, name)
		case s.Status == StepRunning && !now.Before(s.LeaseUntil):
			if s.Attempts >= s.MaxAttempts {
				msg := fmt.Sprintf("attempt %d/%d did not finish (lease expired at %s)", s.Attempts, s.MaxAttempts, s.LeaseUntil.Format(time.RFC3339))
				if s.Error != "" {
					msg += "; last error: " + s.Error
				}
				if _, err := o.failStep(ctx, s, msg); err != nil {
					return err
				}
				rep.FailedSteps = append(rep.FailedSteps, name)
				return nil // the run has failed
			}
			// A fresh name per attempt: the original task may still be in
			// the queue's dedup window.
			if err := o.sweepEnqueue(ctx, def, r, s, fmt.Sprintf("-sweep-a%d", s.Attempts)); err != nil {
				return err
			}
			rep.Reenqueued = append(rep.Reenqueued, name)
		case s.Status == StepWaiting && !now.Before(s.LeaseUntil) && now.Sub(s.NextCheckAt) > staleCheck:
			// Its due check is overdue: the task was lost (or the queue
			// gave up on it, keeping its name). Take over with the next
			// check number; a late delivery of the lost one is then stale.
			if err := o.sweepCheck(ctx, def, r, s); err != nil {
				return err
			}
			rep.Reenqueued = append(rep.Reenqueued, name)
		case s.Status == StepSucceeded && superseded(s, predsOf(byName, sd.After)) != nil:
			// It ran on an output since superseded, and the delivery that
			// should re-run it was lost: re-run it now.
			gen, err := o.bumpGeneration(ctx, s)
			if err != nil {
				return err
			}
			if err := o.enqueue(ctx, def, runID, r.Date, r.Params, sd.Name, gen); err != nil {
				return err
			}
			rep.Reenqueued = append(rep.Reenqueued, name)
		case s.Status == StepRetrying && now.Sub(s.UpdatedAt) > staleRetry:
			if err := o.sweepEnqueue(ctx, def, r, s, fmt.Sprintf("-sweep-r%d", s.Attempts)); err != nil {
				return err
			}
			rep.Reenqueued = append(rep.Reenqueued, name)
		case s.Status == StepPending && ready && (r.Notes[noteOnly] == "" || s.Only):
			// Never enqueued (a crash between a predecessor's success and
			// its successor's enqueue, or an operator's enqueue whose queue
			// call failed), or enqueued: the deterministic name makes this a
			// no-op then. In an --only run only the step the operator asked
			// for (recorded Only) is queued, not the others. A step left
			// pending for long may have had its task dropped by the queue,
			// whose name stays taken for a day: then a fresh name per sweep
			// period.
			t := o.task(def, runID, r.Date, r.Params, sd.Name, s.Generation)
			t.Payload.Force, t.Payload.Only = s.Forced, s.Only
			if now.Sub(s.UpdatedAt) > staleRetry {
				t.Name += fmt.Sprintf("-sweep-p%d", now.Unix()/int64(staleRetry.Seconds()))
			}
			if err := o.queue.Enqueue(ctx, t); err != nil {
				return fmt.Errorf("reconcile: enqueue %s of %s: %w", sd.Name, runID, err)
			}
			rep.Reenqueued = append(rep.Reenqueued, name)
		}
	}
	return nil
}

func (o *Orchestrator) sweepEnqueue(ctx context.Context, def *runGraph, r Run, s StepRun, suffix string) error {
	t := o.task(def, r.ID, r.Date, r.Params, s.Step, s.Generation)
	t.Payload.Force, t.Payload.Only = s.Forced, s.Only
	t.Name += suffix
	if err := o.queue.Enqueue(ctx, t); err != nil {
		return fmt.Errorf("reconcile: enqueue %s of %s: %w", s.Step, r.ID, err)
	}
	return nil
}

// predsOf lists the records of the named steps.
func predsOf(byName map[string]StepRun, names []string) []StepRun {
	out := make([]StepRun, 0, len(names))
	for _, n := range names {
		out = append(out, byName[n])
	}
	return out
}
