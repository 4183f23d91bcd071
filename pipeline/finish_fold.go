package pipeline

import (
	"context"
	"time"
)

// FinishFunc decides a run's end on the run as stored with all of its steps
// (the step being written among them, as written): the run record to write
// and true, or false to leave the run as it is. It is pure: it may run more
// than once, and it only reads the steps it is given (a ledger may lend it
// records it shares, without copying them in its single writer).
type FinishFunc func(r Run) (Run, bool)

// Finisher is an optional capability of a Transitioner (local mode: the
// ledger and the local queue share one bbolt file): the transition of a step
// that may end its run (a sink, or a step run with --only) also writes the
// run's end, so that the end of a run is one commit instead of two (the
// step's result, then the run's end) plus the handled task's deletion. The
// gcp backend does not implement it.
type Finisher interface {
	Transitioner
	// TransitionFinish commits, in one durable transaction, all or nothing
	// of: s, as Transition writes it (compare-and-swap on s.Version;
	// ErrConflict or ErrNotFound write nothing at all); the deletion of
	// handled, as Transition deletes it; and the run record finish returns
	// for s's run as read in that transaction, with all of its steps (s as
	// written), written as UpdateRun writes it. It returns s with its new
	// Version, the run (as written when wrote, else as read) with its steps,
	// and whether the run was written.
	TransitionFinish(ctx context.Context, s StepRun, handled Task, finish FinishFunc) (stored StepRun, run Run, wrote bool, err error)
}

// endRun sets on x the end of a run as status with msg at now: its summary
// from x's steps, its final notification owed.
func endRun(x *Run, status RunStatus, msg string, now time.Time) {
	x.Status, x.Error, x.FinishedAt, x.UpdatedAt, x.Notify = status, msg, now, now, NotifyPending
	x.Summary = Summarize(x.Steps)
}

// finishIfDone is the decision of a step's transition that may end its run:
// the run succeeds when it is still open and every step succeeded on its
// predecessors' latest outputs (runDone on g), as maybeFinish decides on a
// read after the step's own write.
func finishIfDone(g *Graph, now time.Time) FinishFunc {
	return func(x Run) (Run, bool) {
		if x.Status.Terminal() || !runDone(g, x.Steps) {
			return x, false
		}
		endRun(&x, RunSucceeded, "", now)
		return x, true
	}
}

// mayEndRun reports whether the success of s (delivered with onlyTask) may
// end its run: a step run alone, or a sink. advance then finishes instead of
// enqueuing successors, and with a Finisher the step's commit carries the
// end.
func mayEndRun(g *Graph, s StepRun, onlyTask bool) bool {
	return onlyTask || s.Only || len(g.Successors(s.Step)) == 0
}

// runEnd is a run's end as a step's transition wrote (or found) it, for
// what follows the commit (Orchestrator.ended).
type runEnd struct {
	run   Run
	wrote bool
}

// transitionFinish writes done (a step that may end its run) with its run's
// end, if the run is done, in one commit.
func (o *Orchestrator) transitionFinish(ctx context.Context, f Finisher, rg *runGraph, done StepRun, handled Task) (StepRun, *runEnd, error) {
	stored, run, wrote, err := f.TransitionFinish(ctx, done, handled, finishIfDone(rg.Graph, o.now().UTC()))
	if err != nil {
		return stored, nil, err
	}
	return stored, &runEnd{run: run, wrote: wrote}, nil
}
