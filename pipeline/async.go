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
	w.Status, w.AsyncState, w.Error = StepWaiting, poll.State, errMsg
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
// timeout, turning a panic into an error.
func (o *Orchestrator) runPoll(ctx context.Context, name string, timeout time.Duration, f func(context.Context) (steps.Poll, error)) (poll steps.Poll, err error) {
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

// check handles the due check of a waiting step: it claims the check's
// lease, asks the kind, and records what it said.
func (o *Orchestrator) check(ctx context.Context, rg *runGraph, p TaskPayload, in steps.Input, cur StepRun, res StepResult, log *slog.Logger) (StepResult, error) {
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
	poll, checkErr := o.runPoll(ctx, p.Step, timeout, func(ctx context.Context) (steps.Poll, error) {
		return body.Check(ctx, in, claimed.AsyncState)
	})
	ctx, cancel := detach(ctx)
	defer cancel()
	switch {
	case checkErr == nil && poll.Done:
		return o.succeedAsync(ctx, rg, p, claimed, poll.Output, res, log)
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
		res.Outcome, res.Status, res.Error = OutcomeFailed, failed.Status, failed.Error
		return res, nil
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
	return res, o.advance(ctx, rg, p, stored)
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
	if err := c.Cancel(ctx, in, s.AsyncState); err != nil {
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
