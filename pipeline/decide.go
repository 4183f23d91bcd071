package pipeline

import (
	"fmt"
	"time"
)

// action is what HandleStep does with one delivery.
type action int

// Actions of decide, in the order its checks reach them.
const (
	actStale        action = iota // an older generation's task: a re-run superseded it
	actAhead                      // a task ahead of the ledger: refuse (conflict)
	actAlreadyDone                // the step succeeded: re-advance, never re-run
	actFinishFailed               // the step failed: make sure its run failed
	actNotRunnable                // the step was cancelled or skipped
	actLeaseHeld                  // another attempt holds the lease
	actReadRun                    // the run's status matters: read it and decide again
	actCancelStep                 // the run was cancelled: mark the step cancelled
	actRunEnded                   // the run ended otherwise: refuse, saying why
	actBlocked                    // a predecessor ended without succeeding
	actWait                       // a predecessor has not succeeded yet
	actExhausted                  // the last attempt's lease expired: fail the step
	actClaim                      // claim the lease and run the body
	actRerun                      // the step succeeded on an input since superseded: run it again in a new generation
	actRequeueCheck               // the step waits on a later check than the delivery's: make sure that check is queued
	actCheck                      // claim the check's lease and check the asynchronous work
	actStartTimeout               // an asynchronous start never recorded (crashes) until the step's timeout: fail the step
)

var actionNames = [...]string{"stale", "ahead", "already_done", "finish_failed", "not_runnable", "lease_held",
	"read_run", "cancel_step", "run_ended", "blocked", "wait", "exhausted", "claim", "rerun",
	"requeue_check", "check", "start_timeout"}

func (a action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// stepState is what the ledger recorded that a delivery is decided on.
type stepState struct {
	// Generation is the delivered task's generation.
	Generation int
	// Check is the delivered check task's number (0: the step's own task).
	Check int
	// Timeout is the step's timeout: it bounds an asynchronous wait.
	Timeout time.Duration
	// Async says the step's kind is asynchronous (steps.AsyncStep).
	Async bool
	// Cur is the step's record, Preds its predecessors' (in the run's graph).
	Cur   StepRun
	Preds []StepRun
	// Run is the run's record when it was read, nil otherwise.
	Run *Run
	Now time.Time
}

// decision is decide's answer.
type decision struct {
	Act action
	// Pred is the predecessor that blocks the step or is waited for.
	Pred *StepRun
	// TakeOver says the claim takes over an attempt whose lease expired.
	TakeOver bool
	// Restart says the claim starts an asynchronous step's work again
	// within the same attempt: the attempt's start was never recorded (the
	// process died between Start and recording its state), so a kind with a
	// deterministic job ID adopts the work that start began.
	Restart bool
	// Last says the check comes at or after the step's timeout: it looks
	// at the work once more, and work not done then times the step out.
	Last bool
}

// decide is the step state machine: a pure function of the recorded state.
// The run is read only when it can matter (a retry, a take-over or a re-run,
// which a cancel or the sweeper may have overtaken): the first attempt of a
// first generation costs no read of the run, and a run the sweeper ended has
// its unstarted steps skipped instead.
func decide(s stepState) decision {
	cur := s.Cur
	if cur.Status == StepSucceeded && s.Generation <= cur.Generation {
		// Any delivery of a succeeded step (a duplicate, a late task, a
		// predecessor's recheck) re-runs it when an input it consumed has
		// been superseded since: decided by generations, never by clocks.
		if p := superseded(cur, s.Preds); p != nil {
			return decision{Act: actRerun, Pred: p}
		}
	}
	switch {
	case s.Generation < cur.Generation:
		return decision{Act: actStale}
	case s.Generation > cur.Generation:
		return decision{Act: actAhead}
	}
	if s.Check > 0 {
		return decideCheck(s)
	}
	takeOver := false
	switch cur.Status {
	case StepSucceeded:
		return decision{Act: actAlreadyDone}
	case StepFailed:
		return decision{Act: actFinishFailed}
	case StepCancelled, StepSkipped:
		return decision{Act: actNotRunnable}
	case StepWaiting:
		// A duplicate (or the retry) of the delivery that started the
		// work: the work is not started again; its check is queued.
		return decision{Act: actRequeueCheck}
	case StepRunning:
		if s.Now.Before(cur.LeaseUntil) {
			return decision{Act: actLeaseHeld}
		}
		takeOver = true
	}
	if cur.Attempts > 0 || cur.Generation > 1 {
		if s.Run == nil {
			return decision{Act: actReadRun}
		}
		switch {
		case s.Run.Status == RunCancelled:
			return decision{Act: actCancelStep}
		case s.Run.Status.Terminal():
			return decision{Act: actRunEnded}
		}
	}
	// Only the ledger can force a step past its gate (an operator's Enqueue
	// records it): a task claiming force is not enough.
	if !cur.Forced {
		for i := range s.Preds {
			pr := &s.Preds[i]
			if pr.Status == StepSucceeded {
				continue
			}
			if pr.Status.Terminal() {
				return decision{Act: actBlocked, Pred: pr}
			}
			return decision{Act: actWait, Pred: pr}
		}
	}
	if takeOver && s.Async {
		// An asynchronous start whose state was never recorded: start
		// again in the same attempt (not counted), bounded by the step's
		// timeout counted from the attempt's first start.
		if !s.Now.Before(cur.StartedAt.Add(s.Timeout)) {
			return decision{Act: actStartTimeout}
		}
		return decision{Act: actClaim, TakeOver: true, Restart: true}
	}
	if cur.Attempts >= cur.MaxAttempts {
		// Only reachable when the last attempt's lease expired (a crash or a
		// kill mid-step): there is no attempt left to give.
		return decision{Act: actExhausted}
	}
	return decision{Act: actClaim, TakeOver: takeOver}
}

// decideCheck decides a check task's delivery (s.Check > 0) of the step's
// current generation. Checks are numbered per generation: only the one the
// step records as due (cur.Check) checks; an older one (a duplicate, or the
// retry of a delivery whose next check's enqueue failed) makes sure the due
// one is queued. Each check reads the run (checks are few), so a cancel or
// an ended run stops the wait.
func decideCheck(s stepState) decision {
	cur := s.Cur
	switch cur.Status {
	case StepSucceeded:
		return decision{Act: actAlreadyDone}
	case StepFailed:
		return decision{Act: actFinishFailed}
	case StepCancelled, StepSkipped:
		return decision{Act: actNotRunnable}
	case StepWaiting:
	default:
		// Pending, running or retrying: the check of a wait that ended
		// (an earlier attempt's, before a crash or a retry).
		return decision{Act: actStale}
	}
	switch {
	case s.Check < cur.Check:
		return decision{Act: actRequeueCheck}
	case s.Check > cur.Check:
		return decision{Act: actAhead}
	case s.Now.Before(cur.LeaseUntil):
		return decision{Act: actLeaseHeld}
	case s.Run == nil:
		return decision{Act: actReadRun}
	case s.Run.Status == RunCancelled:
		return decision{Act: actCancelStep}
	case s.Run.Status.Terminal():
		return decision{Act: actRunEnded}
	}
	// At or past the timeout the check still looks once: work that ended
	// since the previous check is not failed for having ended unseen.
	last := !s.Now.Before(waitDeadline(cur, s.Timeout))
	return decision{Act: actCheck, TakeOver: !cur.LeaseUntil.IsZero(), Last: last}
}

// waitDeadline is when a waiting step's wait exceeds its timeout.
func waitDeadline(cur StepRun, timeout time.Duration) time.Time {
	return cur.WaitingSince.Add(timeout)
}

// superseded returns the predecessor (of preds) that has a newer succeeded
// generation than the one s consumed, or nil. A predecessor run with --only
// supersedes nothing (it does not chain on); a step recorded before steps
// kept their inputs is never stale.
func superseded(s StepRun, preds []StepRun) *StepRun {
	for i := range preds {
		p := &preds[i]
		if p.Status != StepSucceeded || p.Only {
			continue
		}
		if g, ok := s.Inputs[p.Step]; ok && p.Generation > g {
			return p
		}
	}
	return nil
}

// consumed is what a step claiming now consumes: per predecessor, the
// generation of its output, or 0 when it has none (a forced step).
func consumed(preds []StepRun) map[string]int {
	in := make(map[string]int, len(preds))
	for _, p := range preds {
		in[p.Step] = 0
		if p.Status == StepSucceeded {
			in[p.Step] = p.Generation
		}
	}
	return in
}

// runDone reports whether a run's steps, under graph g, are all succeeded on
// their predecessors' latest outputs: the run may finish as succeeded.
func runDone(g *Graph, stepRuns []StepRun) bool {
	// Indexes, not copies: it runs in the local store's shared commit.
	byName := make(map[string]int, len(stepRuns))
	for i, s := range stepRuns {
		if s.Status != StepSucceeded {
			return false
		}
		byName[s.Step] = i
	}
	var preds []StepRun
	for _, s := range stepRuns {
		gs := g.Step(s.Step)
		if gs == nil {
			continue
		}
		preds = preds[:0]
		for _, a := range gs.After {
			var p StepRun
			if i, ok := byName[a]; ok {
				p = stepRuns[i]
			}
			preds = append(preds, p)
		}
		if superseded(s, preds) != nil {
			return false
		}
	}
	return true
}

// anyFailed reports whether a step has failed: the run may finish as failed.
func anyFailed(stepRuns []StepRun) bool {
	for _, s := range stepRuns {
		if s.Status == StepFailed {
			return true
		}
	}
	return false
}

// linearSuccessors decides whether the hand-off of step s, just succeeded, is
// linear: the tasks of its successors follow from the recorded state alone.
// It is when s chains on (neither it nor its task is --only), is in its first
// generation, has successors, and is the only predecessor of each of them:
// then each successor is still in its first generation too (an operator's
// re-run of it enqueued its own task) and needs no other predecessor, so its
// task is enqueued in generation 1 without a read. Otherwise (a sink, a join,
// a re-run generation, --only) ok is false and advance decides on reads.
func linearSuccessors(g *Graph, s StepRun, onlyTask bool) (next []string, ok bool) {
	if onlyTask || s.Only || s.Generation != 1 {
		return nil, false
	}
	next = g.Successors(s.Step)
	if len(next) == 0 {
		return nil, false
	}
	for _, n := range next {
		gs := g.Step(n)
		if gs == nil || len(gs.After) != 1 || gs.After[0] != s.Step {
			return nil, false
		}
	}
	return next, true
}
