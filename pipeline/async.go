package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

// Asynchronous steps (steps.AsyncStep) start their work in one delivery and
// are then followed by check tasks, each a short request: the step waits
// (StepWaiting) with the kind's state in its record, and its timeout bounds
// the whole wait, not each request.
const (
	// AsyncRequestTimeout bounds one Start or Check of an asynchronous step
	// (and so its lease and its tasks' dispatch deadline), whatever the
	// step's timeout.
	AsyncRequestTimeout = 2 * time.Minute
	// DefaultCheckInterval is the wait before a check when the kind names
	// none; MinCheckInterval the shortest wait honoured.
	DefaultCheckInterval = 30 * time.Second
	MinCheckInterval     = time.Second
	// MaxAsyncTimeout is the longest timeout (whole wait) of an
	// asynchronous step.
	MaxAsyncTimeout = 7 * 24 * time.Hour
)

// OutcomeWaiting says an asynchronous step's work was started or checked
// and is still going on: a check task follows.
const OutcomeWaiting Outcome = "waiting"

// asyncBody returns step's body as an asynchronous step, if it is one.
func (g *runGraph) asyncBody(step string) (steps.AsyncStep, bool) {
	b, ok := g.bodies[step].(steps.AsyncStep)
	return b, ok
}

// isAsync reports whether step's kind is asynchronous in this binary.
func (g *runGraph) isAsync(step string) bool {
	_, ok := g.asyncBody(step)
	return ok
}

// requestTimeout bounds one request of step: its timeout, or for an
// asynchronous step the shorter of it and AsyncRequestTimeout.
func (g *runGraph) requestTimeout(step string) time.Duration {
	timeout := DefaultTimeout
	if gs := g.Step(step); gs != nil {
		timeout = gs.Timeout
	}
	if _, ok := g.asyncBody(step); ok {
		return min(timeout, AsyncRequestTimeout)
	}
	return timeout
}

// checkTask is the task of check number n of a step in a generation: its
// name is the step's task name with the check number, so that every
// enqueue of one check collapses into one task.
func (o *Orchestrator) checkTask(rg *runGraph, p TaskPayload, gen, n int, delay time.Duration) Task {
	t := o.task(rg, p.RunID, p.Date, p.Params, p.Step, gen)
	t.Name += fmt.Sprintf("-c%d", n)
	t.Payload.Check = n
	t.Payload.Force, t.Payload.Only = p.Force, p.Only
	t.Delay = max(delay, 0)
	return t
}

// enqueueCheck queues the check the waiting step s records as due, after
// delay.
func (o *Orchestrator) enqueueCheck(ctx context.Context, rg *runGraph, p TaskPayload, s StepRun, delay time.Duration) error {
	t := o.checkTask(rg, p, s.Generation, s.Check, delay)
	if err := o.queue.Enqueue(ctx, t); err != nil {
		return fmt.Errorf("enqueue check %d of %s of %s: %w", s.Check, s.Step, s.RunID, err)
	}
	return nil
}

// wait records s as waiting on poll's state and queues its next check. The
// interval is the kind's (at least MinCheckInterval), cut short so that the
// check after the step's timeout comes at the timeout. errMsg is the error
// of a transient check failure, kept for people to see.
func (o *Orchestrator) wait(ctx context.Context, rg *runGraph, p TaskPayload, s StepRun, poll steps.Poll, errMsg string) (StepRun, error) {
	now := o.now().UTC()
	timeout := DefaultTimeout
	if gs := rg.Step(s.Step); gs != nil {
		timeout = gs.Timeout
	}
	interval := poll.After
	if interval <= 0 {
		interval = DefaultCheckInterval
	}
	interval = max(interval, MinCheckInterval)
	w := s
	if w.Status != StepWaiting {
		w.WaitingSince = w.StartedAt // the wait counts from the attempt's start
	}
	if deadline := waitDeadline(w, timeout); now.Add(interval).After(deadline) {
		interval = max(deadline.Sub(now), 0)
	}
	if len(poll.State) > 0 || w.Status != StepWaiting {
		w.AsyncState = poll.State // a check answering no state keeps the recorded one
	}
	w.Status, w.Error = StepWaiting, errMsg
	if poll.Link != "" {
		w.Link = poll.Link
	}
	w.Check++
	w.NextCheckAt, w.LeaseUntil, w.UpdatedAt = now.Add(interval), time.Time{}, now
	stored, err := o.ledger.UpdateStep(ctx, w)
	if err != nil {
		return s, fmt.Errorf("record the wait of %s: %w", s.Step, err)
	}
	o.log.InfoContext(ctx, "step waiting", "run", s.RunID, "step", s.Step, "check", stored.Check,
		"next_check_at", stored.NextCheckAt.Format(time.RFC3339), "link", stored.Link, "error", errMsg)
	if s.Status != StepWaiting || s.Error != errMsg {
		o.notify(ctx, Event{Kind: EventStepWaiting, Run: o.runStub(p), Step: &stored})
	}
	return stored, o.enqueueCheck(ctx, rg, p, stored, interval)
}

// runPoll calls f (an asynchronous step's Start or Check) bounded by
// timeout, turning a panic into an error. The end of the request does not
// interrupt it; shutdown does (workContext).
func (o *Orchestrator) runPoll(ctx context.Context, name string, timeout time.Duration, f func(context.Context) (steps.Poll, error)) (poll steps.Poll, err error) {
	ctx, stop := workContext(ctx)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			o.log.ErrorContext(ctx, "step panicked", "step", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("step panicked: %v", r)
		}
	}()
	poll, err = f(ctx)
	if err != nil {
		return steps.Poll{}, err
	}
	if !poll.Done && len(poll.State) > 0 && !json.Valid(poll.State) {
		return steps.Poll{}, steps.Permanent(fmt.Errorf("step kind returned a state that is not JSON"))
	}
	if poll.Done && len(poll.Output) > 0 && !json.Valid(poll.Output) {
		b, _ := json.Marshal(string(poll.Output))
		poll.Output = b
	}
	return poll, nil
}

// stepInput is the input of an attempt of step s of the run p names.
func stepInput(p TaskPayload, gs *GraphStep, date time.Time, preds []StepRun, s StepRun) steps.Input {
	pipe, _, _ := SplitRunID(p.RunID)
	inputs := make(map[string]json.RawMessage, len(preds))
	for _, pr := range preds {
		inputs[pr.Step] = pr.Output
	}
	params := make(map[string]string, len(p.Params)+len(gs.Params))
	for k, v := range p.Params {
		params[k] = v
	}
	for k, v := range gs.Params {
		params[k] = v
	}
	return steps.Input{
		RunID: p.RunID, Pipeline: pipe, Step: p.Step, Date: date, Params: params, Inputs: inputs,
		Attempt: s.Attempts, MaxAttempts: s.MaxAttempts, Generation: s.Generation,
	}
}

// inNamespace is in with the orchestrator's ledger namespace, which the
// asynchronous kinds fold into their remote IDs and keys.
func (o *Orchestrator) inNamespace(in steps.Input) steps.Input {
	in.Namespace = o.namespace
	return in
}

// check handles the due check of a waiting step: it claims the check's
// lease, asks the kind, and records what it said. last says the check
// comes at or after the step's timeout: work not done then (still going
// on, or its check failing transiently) times the step out.
func (o *Orchestrator) check(ctx context.Context, rg *runGraph, p TaskPayload, in steps.Input, cur StepRun, last bool, res StepResult, log *slog.Logger) (StepResult, error) {
	body, ok := rg.asyncBody(p.Step)
	if !ok {
		_, err := rg.body(p.Step)
		if err == nil {
			err = steps.Permanent(fmt.Errorf("step %s waits on asynchronous work but its kind is not asynchronous in this binary", p.Step))
		}
		failed, ferr := o.failStep(ctx, cur, err.Error())
		if ferr != nil {
			return res, ferr
		}
		res.Outcome, res.Status, res.Error = OutcomeFailed, failed.Status, failed.Error
		return res, nil
	}
	now := o.now().UTC()
	timeout := rg.requestTimeout(p.Step)
	claim := cur
	claim.LeaseUntil, claim.UpdatedAt = now.Add(timeout+o.leaseGrace), now
	claimed, err := o.ledger.UpdateStep(ctx, claim)
	if errors.Is(err, ErrConflict) {
		return res, fmt.Errorf("%w: %s check %d was claimed concurrently", ErrLeaseHeld, p.Step, p.Check)
	}
	if err != nil {
		return res, fmt.Errorf("claim check %d of %s: %w", p.Check, p.Step, err)
	}
	in = o.inNamespace(in)
	poll, checkErr := o.runPoll(ctx, p.Step, timeout, func(ctx context.Context) (steps.Poll, error) {
		return body.Check(ctx, in, claimed.AsyncState)
	})
	ctx, cancel := detach(ctx)
	defer cancel()
	switch {
	case checkErr == nil && poll.Done:
		return o.succeedAsync(ctx, rg, p, claimed, poll.Output, res, log)
	case checkErr == nil && last:
		if len(poll.State) > 0 {
			claimed.AsyncState = poll.State // cancel what the kind last named
		}
		if poll.Link != "" {
			claimed.Link = poll.Link
		}
		return o.timeOut(ctx, rg, in, claimed, claimed.Error, res, log)
	case checkErr == nil:
		stored, err := o.wait(ctx, rg, p, claimed, poll, "")
		res.Outcome, res.Status = OutcomeWaiting, stored.Status
		return res, err
	case shuttingDown(ctx):
		release := claimed
		release.LeaseUntil, release.UpdatedAt = time.Time{}, o.now().UTC()
		if _, err := o.ledger.UpdateStep(ctx, release); err != nil {
			return res, fmt.Errorf("release check %d of %s after shutdown: %w", p.Check, p.Step, err)
		}
		return res, fmt.Errorf("%w: %s check %d interrupted; released for the retry", ErrShutdown, p.Step, p.Check)
	case steps.IsPermanent(checkErr):
		log.ErrorContext(ctx, "asynchronous step failed", "error", checkErr.Error(), "check", p.Check)
		done := claimed
		done.UpdatedAt = o.now().UTC()
		done.FinishedAt, done.LeaseUntil = done.UpdatedAt, time.Time{}
		failed, err := o.failStepFrom(ctx, done, checkErr.Error())
		if err != nil {
			return res, err
		}
		// The check failed for good, which does not prove the work has
		// stopped (a lost permission, a state that no longer reads):
		// cancel it where the kind can, so that a re-run does not run
		// beside it. Work that failed is not harmed by the cancel.
		o.cancelRemote(ctx, rg, in, claimed)
		res.Outcome, res.Status, res.Error = OutcomeFailed, failed.Status, failed.Error
		return res, nil
	case last:
		return o.timeOut(ctx, rg, in, claimed, "check failed: "+checkErr.Error(), res, log)
	default:
		// A transient failure of the check (not of the work): check again
		// later with the same state; the step's attempts are not used.
		after, _ := steps.RetryAfterOf(checkErr)
		log.WarnContext(ctx, "check failed; checking again later", "error", checkErr.Error(), "check", p.Check)
		stored, err := o.wait(ctx, rg, p, claimed, steps.Poll{State: claimed.AsyncState, After: after}, "check failed: "+checkErr.Error())
		res.Outcome, res.Status, res.Error = OutcomeWaiting, stored.Status, stored.Error
		return res, err
	}
}

// timeOut fails waiting step s whose wait reached its timeout, and
// cancels the remote work where the kind can. lastErr is the last check's
// error, if any.
func (o *Orchestrator) timeOut(ctx context.Context, rg *runGraph, in steps.Input, s StepRun, lastErr string, res StepResult, log *slog.Logger) (StepResult, error) {
	timeout := DefaultTimeout
	if gs := rg.Step(s.Step); gs != nil {
		timeout = gs.Timeout
	}
	now := o.now().UTC()
	msg := fmt.Sprintf("timeout: waited %s for the asynchronous work (timeout %s)", now.Sub(s.WaitingSince).Round(time.Second), timeout)
	if s.Link != "" {
		msg += "; " + s.Link
	}
	if lastErr != "" {
		msg += "; last error: " + lastErr
	}
	log.ErrorContext(ctx, "asynchronous step timed out", "waiting_since", s.WaitingSince, "check", s.Check)
	failed, err := o.failStep(ctx, s, msg)
	if err != nil {
		return res, err
	}
	o.cancelRemote(ctx, rg, in, s)
	res.Outcome, res.Status, res.Error = OutcomeFailed, failed.Status, failed.Error
	return res, nil
}

// succeedAsync records the success of an asynchronous step and advances.
func (o *Orchestrator) succeedAsync(ctx context.Context, rg *runGraph, p TaskPayload, s StepRun, out json.RawMessage, res StepResult, log *slog.Logger) (StepResult, error) {
	done := s
	done.UpdatedAt = o.now().UTC()
	done.FinishedAt, done.LeaseUntil = done.UpdatedAt, time.Time{}
	done.Status, done.Output, done.Error = StepSucceeded, out, ""
	stored, err := o.ledger.UpdateStep(ctx, done)
	if err != nil {
		return res, fmt.Errorf("record success of %s: %w", p.Step, err)
	}
	log.InfoContext(ctx, "step succeeded", "waited_ms", done.FinishedAt.Sub(s.WaitingSince).Milliseconds(), "checks", s.Check)
	o.notify(ctx, Event{Kind: EventStepSucceeded, Run: o.runStub(p), Step: &stored})
	res.Outcome, res.Status, res.Output, res.Error = OutcomeSucceeded, stored.Status, stored.Output, ""
	if rerun, gen, err := o.rerunIfSuperseded(ctx, rg, p, stored, log); err != nil || rerun {
		if rerun {
			res.Outcome, res.Generation, res.Status, res.Output = OutcomeRerun, gen, StepPending, nil
		}
		return res, err
	}
	return res, o.advance(ctx, rg, p, stored)
}

// rerunIfSuperseded runs s (just succeeded after a wait) again in a new
// generation when a predecessor succeeded anew while it waited: its work
// consumed a superseded input, and a waiting step has no recheck task to
// find that out (a running one does). Its predecessors are read after the
// success is recorded, so a predecessor succeeding later finds s succeeded
// and re-runs it itself (advance); a concurrent re-run of s is fine.
func (o *Orchestrator) rerunIfSuperseded(ctx context.Context, rg *runGraph, p TaskPayload, s StepRun, log *slog.Logger) (bool, int, error) {
	gs := rg.Step(s.Step)
	if gs == nil || len(gs.After) == 0 {
		return false, 0, nil
	}
	preds, err := o.ledger.GetSteps(ctx, s.RunID, gs.After...)
	if err != nil {
		return false, 0, fmt.Errorf("predecessors of %s: %w", s.Step, err)
	}
	pred := superseded(s, preds)
	if pred == nil {
		return false, 0, nil
	}
	gen, err := o.bumpGeneration(ctx, s)
	if errors.Is(err, ErrConflict) {
		return true, s.Generation + 1, nil // re-run concurrently (a predecessor's advance); that enqueues it
	}
	if err != nil {
		return false, 0, err
	}
	log.InfoContext(ctx, "input superseded while waiting; running the step again", "input", pred.Step,
		"consumed_generation", s.Inputs[pred.Step], "latest_generation", pred.Generation, "new_generation", gen)
	return true, gen, o.enqueue(ctx, rg, p.RunID, p.Date, p.Params, s.Step, gen)
}

// cancelRemote asks an asynchronous step's kind to stop the work s waits
// on, where the kind can. Best effort: a failure is logged.
func (o *Orchestrator) cancelRemote(ctx context.Context, rg *runGraph, in steps.Input, s StepRun) {
	if s.Status != StepWaiting || rg == nil {
		return
	}
	body, ok := rg.asyncBody(s.Step)
	if !ok {
		return
	}
	c, ok := body.(steps.Canceller)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), AsyncRequestTimeout)
	defer cancel()
	if err := c.Cancel(ctx, o.inNamespace(in), s.AsyncState); err != nil {
		o.log.WarnContext(ctx, "could not cancel the remote work", "run", s.RunID, "step", s.Step, "link", s.Link, "error", err.Error())
		return
	}
	o.log.InfoContext(ctx, "remote work cancelled", "run", s.RunID, "step", s.Step, "link", s.Link)
}

// cancelRemoteOf cancels the remote work of step s of run r (read with its
// graph), building the input from the run's record.
func (o *Orchestrator) cancelRemoteOf(ctx context.Context, r Run, s StepRun) {
	if s.Status != StepWaiting {
		return
	}
	rg, err := o.graphForRun(r)
	if err != nil {
		return
	}
	gs := rg.Step(s.Step)
	if gs == nil {
		return
	}
	date, _ := ParseDate(r.Date, rg.Location())
	p := TaskPayload{RunID: r.ID, Step: s.Step, Generation: s.Generation, Date: r.Date, Params: r.Params}
	o.cancelRemote(ctx, rg, stepInput(p, gs, date, nil, s), s)
}

// hurryCheck queues, due now, the check that follows the one in flight on
// waiting step s of run r (its lease held when r was cancelled), so that
// the cancel reaches the remote work without waiting out the check
// interval: the in-flight check's own enqueue of that check (after the
// interval) collapses into this one by name. Best effort: a failure is
// logged, and the check then comes after the interval.
func (o *Orchestrator) hurryCheck(ctx context.Context, r Run, s StepRun) {
	rg, err := o.graphForRun(r)
	if err != nil {
		return
	}
	next := s
	next.Check++
	p := TaskPayload{RunID: r.ID, Step: s.Step, Generation: s.Generation, Date: r.Date, Params: r.Params, Force: s.Forced, Only: s.Only}
	if err := o.enqueueCheck(ctx, rg, p, next, 0); err != nil {
		o.log.WarnContext(ctx, "could not hurry the check of a step cancelled while being checked", "run", r.ID, "step", s.Step, "error", err.Error())
	}
}

// clearWait forgets s's asynchronous wait (a new generation starts afresh;
// its check tasks have names of their own).
func clearWait(s StepRun) StepRun {
	s.AsyncState, s.Check, s.WaitingSince, s.NextCheckAt, s.Link = nil, 0, time.Time{}, time.Time{}, ""
	return s
}

// sweepCheck queues a waiting step's overdue check under the next check
// number (recorded first, by compare-and-swap: a check delivered meanwhile
// wins and this sweep changes nothing).
func (o *Orchestrator) sweepCheck(ctx context.Context, rg *runGraph, r Run, s StepRun) error {
	next := s
	next.Check++
	next.NextCheckAt = o.now().UTC()
	next.UpdatedAt = next.NextCheckAt
	stored, err := o.ledger.UpdateStep(ctx, next)
	if errors.Is(err, ErrConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reconcile: check of %s of %s: %w", s.Step, r.ID, err)
	}
	p := TaskPayload{RunID: r.ID, Step: s.Step, Generation: s.Generation, Date: r.Date, Params: r.Params, Force: s.Forced, Only: s.Only}
	return o.enqueueCheck(ctx, rg, p, stored, 0)
}
