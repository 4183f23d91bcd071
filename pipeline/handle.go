package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

// Delivery describes how a task reached the handler (from X-CloudTasks-*).
type Delivery struct {
	TaskName   string
	RetryCount int
}

// Outcome says what handling a step task did.
type Outcome string

// Outcomes of HandleStep. Each is a final answer for the queue (2xx) except
// where HandleStep returns an error instead.
const (
	OutcomeSucceeded      Outcome = "succeeded"         // the body ran and succeeded
	OutcomeFailed         Outcome = "failed"            // the body failed for good (permanent or out of attempts)
	OutcomeAlreadyDone    Outcome = "already_succeeded" // a duplicate: successors re-enqueued, nothing re-run
	OutcomeNotRunnable    Outcome = "not_runnable"      // the step or run is failed/cancelled/skipped
	OutcomeStaleTask      Outcome = "stale_generation"  // an older generation's task; a re-run superseded it
	OutcomeBlocked        Outcome = "blocked"           // a predecessor failed; the step cannot run
	OutcomeLeaseExhausted Outcome = "lease_expired"     // the last attempt's lease expired; marked failed
)

// StepResult is the handler's answer for one delivery.
type StepResult struct {
	RunID      string          `json:"run_id"`
	Step       string          `json:"step"`
	Generation int             `json:"generation"`
	Outcome    Outcome         `json:"outcome"`
	Status     StepStatus      `json:"status"`
	Attempt    int             `json:"attempt"`
	MaxAttempt int             `json:"max_attempts"`
	Error      string          `json:"error,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
}

// RetryableError is returned when an attempt failed transiently: the handler
// answers 5xx so that the queue delivers the task again.
type RetryableError struct {
	Result StepResult
	Err    error
}

func (e *RetryableError) Error() string {
	return fmt.Sprintf("step %s attempt %d/%d failed, will retry: %v", e.Result.Step, e.Result.Attempt, e.Result.MaxAttempt, e.Err)
}
func (e *RetryableError) Unwrap() error { return e.Err }

// HandleStep handles one delivery of a step task. It runs the step's body only
// when every predecessor has succeeded (or the task forces it), never while
// another attempt holds the lease, and never again after success. Every state
// change is committed before it returns.
func (o *Orchestrator) HandleStep(ctx context.Context, p TaskPayload, d Delivery) (StepResult, error) {
	pipe, _, err := SplitRunID(p.RunID)
	if err != nil {
		return StepResult{}, err
	}
	def := o.catalog.Get(pipe)
	if def == nil {
		return StepResult{}, fmt.Errorf("%w: pipeline %q of run %s is not loaded", ErrNotFound, pipe, p.RunID)
	}
	sd := def.Step(p.Step)
	if sd == nil {
		return StepResult{}, fmt.Errorf("%w: pipeline %q has no step %q (steps: %v)", ErrNotFound, pipe, p.Step, def.StepNames())
	}
	if p.Generation < 1 {
		return StepResult{}, fmt.Errorf("%w: generation must be >= 1, got %d", ErrInvalid, p.Generation)
	}
	if err := validParams(p.Params); err != nil {
		return StepResult{}, err
	}
	date, err := time.ParseInLocation(time.DateOnly, p.Date, def.Location)
	if err != nil {
		return StepResult{}, fmt.Errorf("%w: date %q is not YYYY-MM-DD", ErrInvalid, p.Date)
	}
	log := o.log.With("run", p.RunID, "step", p.Step, "generation", p.Generation)

	names := append([]string{p.Step}, sd.After...)
	got, err := o.ledger.GetSteps(ctx, p.RunID, names...)
	if err != nil {
		return StepResult{}, fmt.Errorf("step %s of %s: %w", p.Step, p.RunID, err)
	}
	cur, preds := got[0], got[1:]
	res := StepResult{RunID: p.RunID, Step: p.Step, Generation: cur.Generation, Status: cur.Status, Attempt: cur.Attempts, MaxAttempt: cur.MaxAttempts, Error: cur.Error}

	switch {
	case p.Generation < cur.Generation:
		res.Outcome = OutcomeStaleTask
		return res, nil
	case p.Generation > cur.Generation:
		return res, fmt.Errorf("%w: task generation %d is ahead of the ledger's %d", ErrConflict, p.Generation, cur.Generation)
	}

	now := o.now().UTC()
	switch cur.Status {
	case StepSucceeded:
		res.Outcome, res.Output = OutcomeAlreadyDone, cur.Output
		// A duplicate, or the retry of a delivery whose successor enqueue
		// failed: re-enqueue (idempotent), never re-run.
		if err := o.advance(ctx, def, p, cur); err != nil {
			return res, err
		}
		return res, nil
	case StepFailed:
		// The retry of a delivery that failed the step but could not fail
		// the run (a crash, a ledger error): finish the run now. Idempotent.
		res.Outcome = OutcomeNotRunnable
		if err := o.finishRun(ctx, p.RunID, RunFailed, fmt.Sprintf("step %s failed: %s", cur.Step, cur.Error)); err != nil {
			return res, err
		}
		return res, nil
	case StepCancelled, StepSkipped:
		res.Outcome = OutcomeNotRunnable
		return res, nil
	case StepRunning:
		if now.Before(cur.LeaseUntil) {
			return res, fmt.Errorf("%w: %s attempt %d/%d holds the lease until %s", ErrLeaseHeld, p.Step, cur.Attempts, cur.MaxAttempts, cur.LeaseUntil.Format(time.RFC3339))
		}
		log.WarnContext(ctx, "lease expired; taking over", "attempt", cur.Attempts, "lease_until", cur.LeaseUntil)
	}

	if cur.Attempts > 0 || cur.Generation > 1 {
		// A retry, a take-over or an operator's re-run: the run may have been
		// cancelled meanwhile (Cancel cannot stop an attempt in flight, nor a
		// re-run cascade). Rare, so worth a read.
		r, err := o.ledger.GetRun(ctx, p.RunID)
		if err != nil {
			return res, fmt.Errorf("step %s of %s: %w", p.Step, p.RunID, err)
		}
		if r.Status == RunCancelled {
			cur.Status, cur.UpdatedAt, cur.LeaseUntil = StepCancelled, now, time.Time{}
			if _, err := o.ledger.UpdateStep(ctx, cur); err != nil {
				return res, fmt.Errorf("cancel %s of %s: %w", p.Step, p.RunID, err)
			}
			res.Outcome, res.Status = OutcomeNotRunnable, StepCancelled
			return res, nil
		}
	}

	// Only the ledger can force a step past its gate (an operator's
	// Enqueue records it): a task claiming force is not enough, so a
	// verified invoker cannot skip the gate by crafting one.
	forced := cur.Forced
	if !forced {
		for _, pr := range preds {
			if pr.Status == StepSucceeded {
				continue
			}
			if pr.Status.Terminal() {
				res.Outcome = OutcomeBlocked
				res.Error = fmt.Sprintf("predecessor %s is %s", pr.Step, pr.Status)
				return res, nil
			}
			return res, fmt.Errorf("%w: %s waits for %s (%s)", ErrNotReady, p.Step, pr.Step, pr.Status)
		}
	}

	if cur.Attempts >= cur.MaxAttempts {
		// Only reachable when the last attempt's lease expired (a crash or a
		// kill mid-step): there is no attempt left to give.
		msg := fmt.Sprintf("attempt %d/%d did not finish (lease expired at %s)", cur.Attempts, cur.MaxAttempts, cur.LeaseUntil.Format(time.RFC3339))
		if cur.Error != "" {
			msg += "; last error: " + cur.Error
		}
		failed, err := o.failStep(ctx, cur, msg)
		if err != nil {
			return res, err
		}
		res.Outcome, res.Status, res.Error = OutcomeLeaseExhausted, failed.Status, failed.Error
		return res, nil
	}

	// Claim: one attempt at a time, by compare-and-swap on the step record.
	claim := cur
	claim.Status = StepRunning
	claim.Attempts++
	claim.StartedAt = now
	claim.FinishedAt = time.Time{}
	claim.LeaseUntil = now.Add(sd.Timeout + o.leaseGrace)
	claim.UpdatedAt = now
	claimed, err := o.ledger.UpdateStep(ctx, claim)
	if errors.Is(err, ErrConflict) {
		return res, fmt.Errorf("%w: %s was claimed by a concurrent delivery", ErrLeaseHeld, p.Step)
	}
	if err != nil {
		return res, fmt.Errorf("claim %s of %s: %w", p.Step, p.RunID, err)
	}
	res.Status, res.Attempt = claimed.Status, claimed.Attempts
	log = log.With("attempt", claimed.Attempts, "max_attempts", claimed.MaxAttempts)
	log.InfoContext(ctx, "step started", "task", d.TaskName, "retry_count", d.RetryCount)
	o.notify(ctx, Event{Kind: EventStepStarted, Run: o.runStub(p), Step: &claimed})

	inputs := make(map[string]json.RawMessage, len(preds))
	for _, pr := range preds {
		inputs[pr.Step] = pr.Output
	}
	params := make(map[string]string, len(p.Params)+len(sd.Params))
	for k, v := range p.Params {
		params[k] = v
	}
	for k, v := range sd.Params {
		params[k] = v
	}
	in := steps.Input{
		RunID: p.RunID, Pipeline: pipe, Step: p.Step, Date: date, Params: params, Inputs: inputs,
		Attempt: claimed.Attempts, MaxAttempts: claimed.MaxAttempts,
	}
	start := time.Now()
	out, runErr := o.runBody(ctx, sd, in)
	elapsed := time.Since(start)

	done := claimed
	done.UpdatedAt = o.now().UTC()
	done.FinishedAt = done.UpdatedAt
	done.LeaseUntil = time.Time{}
	if runErr == nil {
		done.Status, done.Output, done.Error = StepSucceeded, out, ""
		stored, err := o.ledger.UpdateStep(ctx, done)
		if err != nil {
			return res, fmt.Errorf("record success of %s: %w", p.Step, err)
		}
		log.InfoContext(ctx, "step succeeded", "duration_ms", elapsed.Milliseconds())
		o.notify(ctx, Event{Kind: EventStepSucceeded, Run: o.runStub(p), Step: &stored})
		res.Outcome, res.Status, res.Output, res.Error = OutcomeSucceeded, stored.Status, stored.Output, ""
		if err := o.advance(ctx, def, p, stored); err != nil {
			return res, err
		}
		return res, nil
	}

	permanent := steps.IsPermanent(runErr)
	if permanent || done.Attempts >= done.MaxAttempts {
		why := "permanent error"
		if !permanent {
			why = fmt.Sprintf("out of attempts (%d/%d)", done.Attempts, done.MaxAttempts)
		}
		log.ErrorContext(ctx, "step failed", "error", runErr.Error(), "reason", why, "duration_ms", elapsed.Milliseconds())
		failed, err := o.failStepFrom(ctx, done, runErr.Error())
		if err != nil {
			return res, err
		}
		res.Outcome, res.Status, res.Error = OutcomeFailed, failed.Status, failed.Error
		return res, nil
	}
	done.Status, done.Error = StepRetrying, runErr.Error()
	stored, err := o.ledger.UpdateStep(ctx, done)
	if err != nil {
		return res, fmt.Errorf("record failure of %s: %w", p.Step, err)
	}
	log.WarnContext(ctx, "step attempt failed; the queue retries", "error", runErr.Error(), "duration_ms", elapsed.Milliseconds())
	o.notify(ctx, Event{Kind: EventStepRetrying, Run: o.runStub(p), Step: &stored})
	res.Status, res.Error = stored.Status, stored.Error
	return res, &RetryableError{Result: res, Err: runErr}
}

// runStub is the run as a step event knows it without reading the run record.
func (o *Orchestrator) runStub(p TaskPayload) Run {
	pipe, key, _ := SplitRunID(p.RunID)
	return Run{ID: p.RunID, Pipeline: pipe, Key: key, Date: p.Date, Params: p.Params, Status: RunRunning}
}

// runBody runs a step's body with its timeout, turning a panic into an error.
func (o *Orchestrator) runBody(ctx context.Context, sd *StepDef, in steps.Input) (out json.RawMessage, err error) {
	ctx, cancel := context.WithTimeout(ctx, sd.Timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			o.log.ErrorContext(ctx, "step panicked", "step", sd.Name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("step panicked: %v", r)
		}
	}()
	out, err = sd.Body.Run(ctx, in)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("step exceeded its timeout of %s: %w", sd.Timeout, ctx.Err())
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && !steps.IsPermanent(err) {
			err = fmt.Errorf("timeout after %s: %w", sd.Timeout, err)
		}
		return nil, err
	}
	if len(out) > 0 && !json.Valid(out) {
		b, _ := json.Marshal(string(out))
		out = b
	}
	return out, nil
}

// failStep reads nothing: it fails the step record cur (as read) for good.
func (o *Orchestrator) failStep(ctx context.Context, cur StepRun, msg string) (StepRun, error) {
	cur.UpdatedAt = o.now().UTC()
	cur.FinishedAt = cur.UpdatedAt
	cur.LeaseUntil = time.Time{}
	return o.failStepFrom(ctx, cur, msg)
}

// failStepFrom commits s as failed, then fails its run and notifies.
func (o *Orchestrator) failStepFrom(ctx context.Context, s StepRun, msg string) (StepRun, error) {
	s.Status, s.Error = StepFailed, msg
	stored, err := o.ledger.UpdateStep(ctx, s)
	if errors.Is(err, ErrConflict) {
		return s, fmt.Errorf("%w: %s changed while being failed", ErrLeaseHeld, s.Step)
	}
	if err != nil {
		return s, fmt.Errorf("record failure of %s: %w", s.Step, err)
	}
	pipe, key, _ := SplitRunID(s.RunID)
	o.notify(ctx, Event{Kind: EventStepFailed, Run: Run{ID: s.RunID, Pipeline: pipe, Key: key, Status: RunFailed}, Step: &stored})
	if err := o.finishRun(ctx, s.RunID, RunFailed, fmt.Sprintf("step %s failed: %s", s.Step, msg)); err != nil {
		return stored, err
	}
	return stored, nil
}

// advance enqueues the successors of a succeeded step whose predecessors have
// all succeeded, or finishes the run when the step is a sink. Enqueue names
// are deterministic, so doing this twice (duplicates, retries) is harmless.
func (o *Orchestrator) advance(ctx context.Context, def *Definition, p TaskPayload, s StepRun) error {
	if p.Only {
		return o.maybeFinish(ctx, def, s.RunID)
	}
	succs := def.Successors(s.Step)
	if len(succs) == 0 {
		return o.maybeFinish(ctx, def, s.RunID)
	}
	for _, next := range succs {
		nd := def.Step(next)
		names := []string{next}
		for _, a := range nd.After {
			if a != s.Step {
				names = append(names, a)
			}
		}
		var gen int
		if len(names) == 1 && s.Generation == 1 {
			// Linear hand-off of the first generation: the successor is still
			// in generation 1 unless an operator re-ran it, in which case its
			// own task was enqueued by that re-run. Saves a read per step.
			gen = 1
		} else {
			got, err := o.ledger.GetSteps(ctx, s.RunID, names...)
			if err != nil {
				return fmt.Errorf("successors of %s: %w", s.Step, err)
			}
			ready := true
			for _, other := range got[1:] {
				if other.Status != StepSucceeded {
					ready = false
				}
			}
			if !ready {
				continue // the last predecessor to succeed enqueues it
			}
			gen = got[0].Generation
			if got[0].Status == StepSucceeded && s.Generation > 1 && got[0].FinishedAt.Before(s.FinishedAt) {
				// An operator re-ran this step: its successors, which ran on
				// its older output, run again too. (A duplicate delivery of
				// this step finds them newer than its success: no cascade.)
				gen, err = o.bumpGeneration(ctx, got[0])
				if err != nil {
					return err
				}
			}
		}
		if err := o.enqueue(ctx, def, s.RunID, p.Date, p.Params, next, gen); err != nil {
			return err
		}
	}
	return nil
}

// bumpGeneration resets a succeeded step to pending in a new generation.
func (o *Orchestrator) bumpGeneration(ctx context.Context, s StepRun) (int, error) {
	s.Generation++
	s.Status, s.Attempts, s.Error, s.Output, s.Forced = StepPending, 0, "", nil, false
	s.StartedAt, s.FinishedAt, s.LeaseUntil = time.Time{}, time.Time{}, time.Time{}
	s.UpdatedAt = o.now().UTC()
	stored, err := o.ledger.UpdateStep(ctx, s)
	if err != nil {
		return 0, fmt.Errorf("new generation of %s: %w", s.Step, err)
	}
	return stored.Generation, nil
}

// maybeFinish marks the run succeeded when every step has succeeded.
func (o *Orchestrator) maybeFinish(ctx context.Context, def *Definition, runID string) error {
	r, err := o.ledger.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("finish %s: %w", runID, err)
	}
	for _, s := range r.Steps {
		if s.Status != StepSucceeded {
			return nil
		}
	}
	return o.finishRunFrom(ctx, r, RunSucceeded, "")
}

// finishRun moves a run to a terminal state (once) and notifies after commit.
func (o *Orchestrator) finishRun(ctx context.Context, runID string, status RunStatus, msg string) error {
	r, err := o.ledger.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("finish %s: %w", runID, err)
	}
	return o.finishRunFrom(ctx, r, status, msg)
}

func (o *Orchestrator) finishRunFrom(ctx context.Context, r Run, status RunStatus, msg string) error {
	stored, wrote, err := o.updateRun(ctx, r, func(x *Run) bool {
		if x.Status.Terminal() {
			return false
		}
		now := o.now().UTC()
		x.Status, x.Error, x.FinishedAt, x.UpdatedAt, x.Notify = status, msg, now, now, NotifyPending
		x.Summary = Summarize(x.Steps)
		return true
	})
	if err != nil {
		return fmt.Errorf("finish %s: %w", r.ID, err)
	}
	steps := stored.Steps
	stored.Steps = nil
	switch {
	case wrote:
		o.log.InfoContext(ctx, "run finished", "run", r.ID, "status", string(status), "error", msg)
		o.sendFinal(ctx, stored, steps)
		if stored.Trigger == "backfill" {
			// A slot is free: start the backfill's next date.
			if _, err := o.launchPending(ctx); err != nil {
				o.log.WarnContext(ctx, "could not launch the next backfill run", "error", err.Error())
			}
		}
	case o.owed(stored):
		o.sendFinal(ctx, stored, steps) // a crash after the commit left it owed
	}
	return nil
}

// owedGrace is how long the instance that ended a run has to send its final
// notification before others (duplicates, the sweeper) send it instead.
const owedGrace = 30 * time.Second

// owed reports whether r's final notification is owed and no longer being
// sent by the instance that ended the run.
func (o *Orchestrator) owed(r Run) bool {
	return r.Notify == NotifyPending && o.now().Sub(r.FinishedAt) > owedGrace
}

// sendFinal hands the final notification to the notifier and, once every
// notifier accepted it, records it as sent. Notification failures never fail
// the step.
func (o *Orchestrator) sendFinal(ctx context.Context, r Run, stepRuns []StepRun) {
	kind := EventRunSucceeded
	switch r.Status {
	case RunFailed:
		kind = EventRunFailed
	case RunCancelled:
		kind = EventRunCancelled
	}
	full := r
	full.Steps = stepRuns
	if err := o.notify(ctx, Event{Kind: kind, Run: full}); err != nil {
		// Still owed: a later delivery of this run's tasks (or the sweeper)
		// sends it again. At least once, never lost.
		return
	}
	// Notifiers may write the run too (Run.Notes), so a conflict here is
	// expected: re-read and mark the same ending as notified.
	status, finished := r.Status, r.FinishedAt
	_, _, err := o.updateRun(ctx, r, func(x *Run) bool {
		if x.Notify != NotifyPending || x.Status != status || !x.FinishedAt.Equal(finished) {
			return false // already recorded, or the run was re-opened and ended anew
		}
		x.Notify = NotifyDone
		return true
	})
	if err != nil {
		o.log.WarnContext(ctx, "could not record notification", "run", r.ID, "error", err.Error())
	}
}
