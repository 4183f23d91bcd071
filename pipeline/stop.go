package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// stopStanding decides, from the run as read again after a delivery stopped
// a step because the run had ended (cancelled or finished), whether that
// stop stands: it does while the run is still ended. A run that is open
// again was reopened (a resume, an operator's enqueue) between the
// delivery's first read and its stop; the reopen's own enqueue may have come
// and gone before the stop (its task name being this delivery's, the queue
// took it as a duplicate), so the stop must be undone and the task retried.
func stopStanding(run Run) bool {
	return run.Status.Terminal()
}

// stopStands decides, from the step as stored after a put-back of cur
// conflicted, whether cur's generation stays stopped: renewed into a newer
// generation, or stopped again, rather than put back (the put-back landed
// and only its reply was lost).
func stopStands(cur, stored StepRun) bool {
	return stored.Generation != cur.Generation || stored.Status != cur.Status
}

// stopStep records that the step cur of a run that ended is not run
// (cancelled when the run was cancelled, skipped when it ended otherwise).
// If the run turns out to have been reopened meanwhile, it puts cur back as
// it was and answers a conflict, so that the queue delivers the task again
// and the step runs in the reopened run instead of being stranded.
func (o *Orchestrator) stopStep(ctx context.Context, rg *runGraph, p TaskPayload, gs *GraphStep, date time.Time, state stepState, cancelled bool, res StepResult, log *slog.Logger) (StepResult, error) {
	cur := state.Cur
	status, why := StepCancelled, "run was cancelled"
	if !cancelled {
		status, why = StepSkipped, fmt.Sprintf("run is %s: %s", state.Run.Status, state.Run.Error)
	}
	stop := cur
	stop.Status, stop.UpdatedAt, stop.LeaseUntil = status, state.Now, time.Time{}
	if status == StepSkipped {
		stop.Error = "not run: " + why
	}
	stopped, err := o.ledger.UpdateStep(ctx, stop)
	if err != nil {
		return res, fmt.Errorf("stop %s of %s (%s): %w", p.Step, p.RunID, why, err)
	}
	// Once stopped, the step must not be left so in an open run, whatever
	// becomes of the request: a failed read or put-back is tried again.
	dctx, cancel := detach(ctx)
	defer cancel()
	var run Run
	for try := 0; ; try++ {
		if run, err = o.ledger.GetRun(dctx, p.RunID); err == nil || try == stopTries-1 {
			break
		}
	}
	if err != nil {
		return res, fmt.Errorf("stop %s of %s: read the run again: %w", p.Step, p.RunID, err)
	}
	in := stepInput(p, gs, date, state.Preds, cur)
	if !stopStanding(run) {
		back := cur
		back.Version, back.UpdatedAt = stopped.Version, o.now().UTC()
		for try := 0; try < stopTries; try++ {
			if _, err = o.ledger.UpdateStep(dctx, back); err == nil || errors.Is(err, ErrConflict) {
				break
			}
		}
		switch {
		case errors.Is(err, ErrConflict):
			// Most likely the reopen's enqueue saw the stop and sent the
			// step again in a new generation: for this generation the stop
			// stands, and the work it waited on is abandoned. A put-back
			// whose reply was lost conflicts with itself when tried again:
			// what is stored tells.
			if got, gerr := o.ledger.GetSteps(dctx, p.RunID, p.Step); gerr == nil && stopStands(cur, got[0]) {
				o.cancelRemote(ctx, rg, in, cur)
			}
		case err != nil:
			return res, fmt.Errorf("put %s of %s back after the run was reopened: %w", p.Step, p.RunID, err)
		}
		log.InfoContext(ctx, "run reopened while the step was being stopped; retrying", "run_status", run.Status)
		return res, fmt.Errorf("%w: run %s was reopened while %s was being stopped (%s); retry", ErrConflict, p.RunID, p.Step, why)
	}
	log.InfoContext(ctx, "step not run", "reason", why)
	o.cancelRemote(ctx, rg, in, cur)
	res.Outcome, res.Status, res.Error = OutcomeNotRunnable, status, stop.Error
	return res, nil
}

// stopTries bounds the reads and writes of a stop's second look.
const stopTries = 3
