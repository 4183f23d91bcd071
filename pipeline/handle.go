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
	OutcomeRerun          Outcome = "rerun"             // the step had consumed a superseded input: a new generation was enqueued
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
// when every predecessor has succeeded (or the ledger records a force), never
// while another attempt holds the lease, and never again after success. The
// run's own graph (recorded when it was created) decides the step's
// predecessors and successors. Every state change is committed before it
// returns; once the body has run, that bookkeeping no longer depends on ctx
// (see detach).
func (o *Orchestrator) HandleStep(ctx context.Context, p TaskPayload, d Delivery) (StepResult, error) {
	pipe, _, err := SplitRunID(p.RunID)
	if err != nil {
		return StepResult{}, err
	}
	if p.Generation < 1 {
		return StepResult{}, fmt.Errorf("%w: generation must be >= 1, got %d", ErrInvalid, p.Generation)
	}
	if p.Check < 0 {
		return StepResult{}, fmt.Errorf("%w: check must be >= 0, got %d", ErrInvalid, p.Check)
	}
	if err := validParams(p.Params); err != nil {
		return StepResult{}, err
	}
	rg, err := o.graphForTask(ctx, pipe, p)
	if err != nil {
		return StepResult{}, err
	}
	gs := rg.Step(p.Step)
	if gs == nil {
		return StepResult{}, fmt.Errorf("%w: run %s (definition %s) has no step %q (steps: %v)", ErrNotFound, p.RunID, rg.Version, p.Step, rg.StepNames())
	}
	date, err := ParseDate(p.Date, rg.Location())
	if err != nil {
		return StepResult{}, fmt.Errorf("%w: date %v", ErrInvalid, err)
	}
	log := o.log.With("run", p.RunID, "step", p.Step, "generation", p.Generation)

	names := append([]string{p.Step}, gs.After...)
	got, err := o.ledger.GetSteps(ctx, p.RunID, names...)
	if err != nil {
		return StepResult{}, fmt.Errorf("step %s of %s: %w", p.Step, p.RunID, err)
	}
	if err := o.checkRunInput(ctx, p, date.Format(time.DateOnly), got[0]); err != nil {
		return StepResult{}, err
	}
	_, async := rg.asyncBody(p.Step)
	state := stepState{Generation: p.Generation, Check: p.Check, Timeout: gs.Timeout, Async: async, Cur: got[0], Preds: got[1:], Now: o.now().UTC()}
	cur := state.Cur
	res := StepResult{RunID: p.RunID, Step: p.Step, Generation: cur.Generation, Status: cur.Status, Attempt: cur.Attempts, MaxAttempt: cur.MaxAttempts, Error: cur.Error}

	dec := decide(state)
	handedOff := false
	if dec.Act == actReadRun {
		r, err := o.ledger.GetRun(ctx, p.RunID)
		if err != nil {
			return res, fmt.Errorf("step %s of %s: %w", p.Step, p.RunID, err)
		}
		state.Run = &r
		dec = decide(state)
	}
	switch dec.Act {
	case actStale:
		res.Outcome = OutcomeStaleTask
		return res, nil
	case actRerun:
		// It succeeded on an output its predecessor has since superseded
		// (a re-run upstream finished after this step consumed the older
		// output): run it again on the new output, in a new generation.
		gen, err := o.bumpGeneration(ctx, cur)
		if errors.Is(err, ErrConflict) {
			return res, fmt.Errorf("%w: %s changed while being re-run", ErrConflict, p.Step)
		}
		if err != nil {
			return res, err
		}
		log.InfoContext(ctx, "input superseded; running the step again", "input", dec.Pred.Step,
			"consumed_generation", cur.Inputs[dec.Pred.Step], "latest_generation", dec.Pred.Generation, "new_generation", gen)
		if err := o.enqueue(ctx, rg, p.RunID, p.Date, p.Params, p.Step, gen); err != nil {
			return res, err
		}
		res.Outcome, res.Generation, res.Status = OutcomeRerun, gen, StepPending
		return res, nil
	case actAhead:
		return res, fmt.Errorf("%w: task generation %d is ahead of the ledger's %d", ErrConflict, p.Generation, cur.Generation)
	case actAlreadyDone:
		res.Outcome, res.Output = OutcomeAlreadyDone, cur.Output
		// A duplicate, or the retry of a delivery whose successor enqueue
		// failed: re-enqueue (idempotent), never re-run.
		return res, o.advance(ctx, rg, p, cur)
	case actFinishFailed:
		// The retry of a delivery that failed the step but could not fail
		// the run (a crash, a ledger error): finish the run now. Idempotent.
		res.Outcome = OutcomeNotRunnable
		return res, o.finishRun(ctx, p.RunID, RunFailed, fmt.Sprintf("step %s failed: %s", cur.Step, cur.Error))
	case actNotRunnable:
		res.Outcome = OutcomeNotRunnable
		return res, nil
	case actLeaseHeld:
		if o.reserved.take(ctx, cur) {
			// Claimed for this delivery by its predecessor's hand-off, in
			// this process: the attempt is counted and the lease held.
			handedOff = true
			break
		}
		return res, fmt.Errorf("%w: %s attempt %d/%d holds the lease until %s", ErrLeaseHeld, p.Step, cur.Attempts, cur.MaxAttempts, cur.LeaseUntil.Format(time.RFC3339))
	case actRequeueCheck:
		// The work was started and is being checked: never start it
		// again; make sure the due check is queued (idempotent by name).
		res.Outcome = OutcomeWaiting
		return res, o.enqueueCheck(ctx, rg, p, cur, cur.NextCheckAt.Sub(state.Now))
	case actCheck:
		return o.check(ctx, rg, p, stepInput(p, gs, date, state.Preds, cur), cur, dec.Last, res, log)
	case actStartTimeout:
		msg := fmt.Sprintf("timeout: the start of attempt %d was never recorded within the step's timeout %s (the process stopped after starting the work, %s ago); remote work it started may still be running",
			cur.Attempts, gs.Timeout, state.Now.Sub(cur.StartedAt).Round(time.Second))
		log.ErrorContext(ctx, "asynchronous start never recorded; giving up", "started_at", cur.StartedAt)
		failed, err := o.failStep(ctx, cur, msg)
		if err != nil {
			return res, err
		}
		res.Outcome, res.Status, res.Error = OutcomeFailed, failed.Status, failed.Error
		return res, nil
	case actCancelStep, actRunEnded:
		return o.stopStep(ctx, rg, p, gs, date, state, dec.Act == actCancelStep, res, log)
	case actBlocked:
		res.Outcome = OutcomeBlocked
		res.Error = fmt.Sprintf("predecessor %s is %s", dec.Pred.Step, dec.Pred.Status)
		return res, nil
	case actWait:
		return res, fmt.Errorf("%w: %s waits for %s (%s)", ErrNotReady, p.Step, dec.Pred.Step, dec.Pred.Status)
	case actExhausted:
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
	case actClaim:
	default:
		return res, fmt.Errorf("step %s of %s: unexpected decision %s", p.Step, p.RunID, dec.Act)
	}

	body, bodyErr := rg.body(p.Step)
	if bodyErr != nil {
		// The run's definition names a step this binary cannot run: fail it
		// for good, saying which kind is missing.
		log.ErrorContext(ctx, "step cannot run in this binary", "error", bodyErr.Error())
		failed, err := o.failStep(ctx, cur, bodyErr.Error())
		if err != nil {
			return res, err
		}
		res.Outcome, res.Status, res.Error = OutcomeFailed, failed.Status, failed.Error
		return res, nil
	}

	claimed, before := cur, cur.Attempts-1
	if !handedOff {
		base := cur
		if dec.TakeOver && !dec.Restart && o.reserved.take(ctx, cur) {
			// This process's own handed-off claim, its lease run out
			// before its delivery came (a slow queue): the body never
			// ran, so the attempt it counted is this one.
			base.Attempts--
		}
		// Claim: one attempt at a time, by compare-and-swap on the step
		// record. It is written whatever becomes of the request
		// meanwhile: a claim cancelled with its request may still land,
		// leaving the step leased by an attempt nobody runs until the
		// lease expires.
		claim := claimRecord(base, state.Preds, dec.Restart, state.Now, rg.requestTimeout(p.Step)+o.leaseGrace)
		cctx, ccancel := detach(ctx)
		claimed, err = o.ledger.UpdateStep(cctx, claim)
		ccancel()
		if errors.Is(err, ErrConflict) {
			return res, fmt.Errorf("%w: %s was claimed by a concurrent delivery", ErrLeaseHeld, p.Step)
		}
		if err != nil {
			return res, fmt.Errorf("claim %s of %s: %w", p.Step, p.RunID, err)
		}
		before = base.Attempts
	}
	if dec.TakeOver {
		// Logged by the one delivery whose claim won, not by every duplicate
		// that saw the expired lease.
		log.WarnContext(ctx, "lease expired; taking over", "attempt", cur.Attempts, "lease_until", cur.LeaseUntil, "restart_async_start", dec.Restart)
	}
	if ctx.Err() != nil && !dec.Restart {
		// The request ended while the claim was being written: release the
		// step at once, the attempt not counted (no body ran), rather than
		// run a body on a dead request or leave the lease to expire.
		return o.releaseUnstarted(ctx, res, claimed, before)
	}
	res.Status, res.Attempt = claimed.Status, claimed.Attempts
	// The attempt's lines carry its number (as arguments: a Logger.With per
	// delivery would preformat them for a handful of lines).
	attempt := func(kv ...any) []any {
		return append([]any{"attempt", claimed.Attempts, "max_attempts", claimed.MaxAttempts}, kv...)
	}
	log.InfoContext(ctx, "step started", attempt("task", d.TaskName, "retry_count", d.RetryCount)...)
	o.notify(ctx, Event{Kind: EventStepStarted, Run: o.runStub(p), Step: &claimed})

	in := stepInput(p, gs, date, state.Preds, claimed)
	start := time.Now()
	var out json.RawMessage
	var runErr error
	if ab, ok := body.(steps.AsyncStep); ok {
		// Start the work; once it is started the step waits for checks.
		var poll steps.Poll
		poll, runErr = o.runPoll(ctx, p.Step, rg.requestTimeout(p.Step), func(ctx context.Context) (steps.Poll, error) {
			return ab.Start(ctx, o.inNamespace(in))
		})
		if runErr == nil && !poll.Done {
			ctx, cancel := detach(ctx)
			defer cancel()
			stored, err := o.wait(ctx, rg, p, claimed, poll, "")
			res.Outcome, res.Status = OutcomeWaiting, stored.Status
			return res, err
		}
		out = poll.Output
	} else {
		out, runErr = o.runBody(ctx, p.Step, gs.Timeout, body, in)
	}
	elapsed := time.Since(start)

	// The body ran: what follows must not be abandoned because the request
	// ended (a dropped connection, a dispatch deadline, SIGTERM).
	ctx, cancel := detach(ctx)
	defer cancel()

	done := claimed
	done.UpdatedAt = o.now().UTC()
	done.FinishedAt = done.UpdatedAt
	done.LeaseUntil = time.Time{}
	if runErr == nil {
		done.Status, done.Output, done.Error = StepSucceeded, out, ""
		stored, advanced, end, err := o.recordSuccess(ctx, rg, p, d, done)
		if err != nil {
			return res, fmt.Errorf("record success of %s: %w", p.Step, err)
		}
		log.InfoContext(ctx, "step succeeded", attempt("duration_ms", elapsed.Milliseconds())...)
		o.notify(ctx, Event{Kind: EventStepSucceeded, Run: o.runStub(p), Step: &stored})
		res.Outcome, res.Status, res.Output, res.Error = OutcomeSucceeded, stored.Status, stored.Output, ""
		if end != nil {
			// The run's end rode along with the step's result (Finisher):
			// announced after the step's own success.
			o.ended(ctx, end.run, end.wrote)
		}
		if advanced {
			return res, nil
		}
		if err := o.advance(ctx, rg, p, stored); err != nil {
			return res, err
		}
		return res, nil
	}

	if shuttingDown(ctx) {
		// Shutdown interrupted the body: release the step at once (no lease
		// to wait out) without counting the attempt, so that the retry
		// after the restart takes over immediately.
		why := fmt.Sprintf("attempt %d interrupted by shutdown after %s (not counted): %v", claimed.Attempts, elapsed.Round(time.Millisecond), runErr)
		stored, err := o.release(ctx, claimed, claimed.Attempts-1, why)
		if err != nil {
			return res, fmt.Errorf("release %s of %s after shutdown: %w", p.Step, p.RunID, err)
		}
		log.WarnContext(ctx, "step interrupted by shutdown; released for the retry", attempt("duration_ms", elapsed.Milliseconds())...)
		res.Status, res.Attempt, res.Error = stored.Status, stored.Attempts, stored.Error
		return res, fmt.Errorf("%w: %s attempt %d interrupted; released for the retry", ErrShutdown, p.Step, claimed.Attempts)
	}

	permanent := steps.IsPermanent(runErr)
	if permanent || done.Attempts >= done.MaxAttempts {
		why := "permanent error"
		if !permanent {
			why = fmt.Sprintf("out of attempts (%d/%d)", done.Attempts, done.MaxAttempts)
		}
		log.ErrorContext(ctx, "step failed", attempt("error", runErr.Error(), "reason", why, "duration_ms", elapsed.Milliseconds())...)
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
	log.WarnContext(ctx, "step attempt failed; the queue retries", attempt("error", runErr.Error(), "duration_ms", elapsed.Milliseconds())...)
	o.notify(ctx, Event{Kind: EventStepRetrying, Run: o.runStub(p), Step: &stored})
	res.Status, res.Error = stored.Status, stored.Error
	return res, &RetryableError{Result: res, Err: runErr}
}

// recordSuccess commits the succeeded step done. On a linear hand-off
// (linearSuccessors) with a ledger that can (Transitioner), the successors'
// tasks and the deletion of the delivered task go in the same commit (with
// HandOff, the successors' claims too), and advanced is true. For a step
// that may end its run (mayEndRun) with a ledger that can (Finisher), the
// run's end goes in the step's commit, end says what was written or found
// for the caller to announce (ended), and advanced is true. Otherwise only
// the step is written and the caller advances.
func (o *Orchestrator) recordSuccess(ctx context.Context, rg *runGraph, p TaskPayload, d Delivery, done StepRun) (stored StepRun, advanced bool, end *runEnd, err error) {
	handled := Task{Name: d.TaskName, Payload: p}
	if f, ok := o.ledger.(Finisher); ok && mayEndRun(rg.Graph, done, p.Only) {
		// The run's end (if this step completes it) rides along.
		stored, end, err = o.transitionFinish(ctx, f, rg, done, handled)
		return stored, err == nil, end, err
	}
	tr, can := o.ledger.(Transitioner)
	next, linear := linearSuccessors(rg.Graph, done, p.Only)
	if !can || !linear {
		stored, err = o.ledger.UpdateStep(ctx, done)
		return stored, false, nil, err
	}
	tasks := make([]Task, len(next))
	for i, n := range next {
		tasks[i] = o.task(rg, done.RunID, p.Date, p.Params, n, 1)
	}
	if ho, ok := tr.(HandOff); ok {
		// The successors' first claims ride along: their deliveries run
		// their bodies without a claim commit of their own.
		stored, err = o.transitionHandOff(ctx, ho, rg, done, tasks, handled)
		return stored, err == nil, nil, err
	}
	stored, err = tr.Transition(ctx, done, tasks, handled)
	return stored, err == nil, nil, err
}

// runStub is the run as a step event knows it without reading the run record.
func (o *Orchestrator) runStub(p TaskPayload) Run {
	pipe, key, _ := SplitRunID(p.RunID)
	return Run{ID: p.RunID, Pipeline: pipe, Key: key, Date: p.Date, Params: p.Params, Status: RunRunning}
}

// runBody runs a step's body with its timeout, turning a panic into an error.
// The end of the request does not interrupt it; shutdown does (workContext).
func (o *Orchestrator) runBody(ctx context.Context, name string, timeout time.Duration, body steps.Step, in steps.Input) (out json.RawMessage, err error) {
	errTimeout := &stepTimeout{timeout: timeout}
	ctx, stop := workContext(ctx)
	defer stop()
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			o.log.ErrorContext(ctx, "step panicked", "step", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("step panicked: %v", r)
		}
	}()
	out, err = body.Run(ctx, in)
	if err == nil && context.Cause(ctx) == errTimeout {
		// It returned after its timeout (ignoring its context): a timeout.
		err = errTimeout
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && !steps.IsPermanent(err) {
			err = fmt.Errorf("timeout after %s: %w", timeout, err)
		}
		return nil, err
	}
	if len(out) > 0 && !json.Valid(out) {
		b, _ := json.Marshal(string(out))
		out = b
	}
	return out, nil
}

// stepTimeout is the cause a step's context ends with at its timeout: one
// allocation per run of a body, formatted only if it is ever read.
type stepTimeout struct{ timeout time.Duration }

func (e *stepTimeout) Error() string {
	return fmt.Sprintf("step exceeded its timeout of %s: %v", e.timeout, context.DeadlineExceeded)
}

func (e *stepTimeout) Unwrap() error { return context.DeadlineExceeded }

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

// advance enqueues the successors (in the run's graph) of a succeeded step
// whose predecessors have all succeeded, or finishes the run when the step is
// a sink or was run with --only. Enqueue names are deterministic, so doing
// this twice (duplicates, retries) is harmless.
func (o *Orchestrator) advance(ctx context.Context, rg *runGraph, p TaskPayload, s StepRun) error {
	if mayEndRun(rg.Graph, s, p.Only) {
		return o.maybeFinish(ctx, s.RunID)
	}
	for _, next := range rg.Successors(s.Step) {
		nd := rg.Step(next)
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
			succ := got[0]
			gen = succ.Generation
			preds := append([]StepRun{s}, got[1:]...)
			switch {
			case succ.Status == StepSucceeded && superseded(succ, preds) != nil:
				// It ran on an output this step (or another predecessor)
				// has superseded: it runs again. Decided by the generations
				// it consumed, never by clocks; a duplicate delivery of this
				// step finds it up to date: no second cascade.
				gen, err = o.bumpGeneration(ctx, succ)
				if errors.Is(err, ErrConflict) {
					continue // bumped concurrently; that bump enqueues it
				}
				if err != nil {
					return err
				}
			case succ.Status == StepRunning && succ.Inputs != nil && succ.Inputs[s.Step] < s.Generation:
				// Running on this step's older output: once it finishes,
				// this recheck delivery (a name of its own) finds it
				// superseded and runs it again. Until then it answers 409
				// and the queue retries.
				t := o.task(rg, s.RunID, p.Date, p.Params, next, gen)
				t.Name += fmt.Sprintf("-after-%s-g%d", sanitizeName(s.Step), s.Generation)
				if err := o.queue.Enqueue(ctx, t); err != nil {
					return fmt.Errorf("recheck %s after %s of %s: %w", next, s.Step, s.RunID, err)
				}
			}
		}
		if err := o.enqueue(ctx, rg, s.RunID, p.Date, p.Params, next, gen); err != nil {
			return err
		}
	}
	return nil
}

// bumpGeneration resets a succeeded step to pending in a new generation.
func (o *Orchestrator) bumpGeneration(ctx context.Context, s StepRun) (int, error) {
	s.Generation++
	s.Status, s.Attempts, s.Error, s.Output, s.Forced, s.Only, s.Inputs = StepPending, 0, "", nil, false, false, nil
	s.StartedAt, s.FinishedAt, s.LeaseUntil = time.Time{}, time.Time{}, time.Time{}
	s = clearWait(s)
	s.UpdatedAt = o.now().UTC()
	stored, err := o.ledger.UpdateStep(ctx, s)
	if err != nil {
		return 0, fmt.Errorf("new generation of %s: %w", s.Step, err)
	}
	return stored.Generation, nil
}

// maybeFinish marks the run succeeded when every step has succeeded.
func (o *Orchestrator) maybeFinish(ctx context.Context, runID string) error {
	r, err := o.ledger.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("finish %s: %w", runID, err)
	}
	return o.finishRunFrom(ctx, r, RunSucceeded, "")
}

// finishRun moves a run to a terminal state (once) and notifies after commit.
// A run is failed only while one of its steps is failed (a resume may have
// renewed it meanwhile).
func (o *Orchestrator) finishRun(ctx context.Context, runID string, status RunStatus, msg string) error {
	r, err := o.ledger.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("finish %s: %w", runID, err)
	}
	var guard func(Run) bool
	if status == RunFailed {
		guard = func(x Run) bool { return anyFailed(x.Steps) }
	}
	return o.finishRunIf(ctx, r, status, msg, guard)
}

// finishRunFrom finishes r (as read, with its steps). A run finishes as
// succeeded only when every step succeeded on its predecessors' latest
// outputs (runDone).
func (o *Orchestrator) finishRunFrom(ctx context.Context, r Run, status RunStatus, msg string) error {
	var guard func(Run) bool
	if status == RunSucceeded {
		rg, err := o.graphForRun(r)
		if err != nil {
			return fmt.Errorf("finish %s: %w", r.ID, err)
		}
		guard = func(x Run) bool { return runDone(rg.Graph, x.Steps) }
	}
	return o.finishRunIf(ctx, r, status, msg, guard)
}

// finishRunIf writes the run's end if guard (nil: always) holds for the run
// and its steps as read, deciding again on a fresh read after a conflict: an
// operator's reopen (which always writes the run, bumping its epoch) between
// the read and the write wins.
func (o *Orchestrator) finishRunIf(ctx context.Context, r Run, status RunStatus, msg string, guard func(Run) bool) error {
	stored, wrote, err := o.updateRun(ctx, r, func(x *Run) bool {
		if x.Status.Terminal() || (guard != nil && !guard(*x)) {
			return false
		}
		endRun(x, status, msg, o.now().UTC())
		return true
	})
	if err != nil {
		return fmt.Errorf("finish %s: %w", r.ID, err)
	}
	o.ended(ctx, stored, wrote)
	return nil
}

// ended does what follows the commit of a run's end (wrote) or the finding
// of one already written (stored, with its steps): the log line, the final
// notification, the next backfill run; or the final notification if a crash
// after its commit left it owed.
func (o *Orchestrator) ended(ctx context.Context, stored Run, wrote bool) {
	steps := stored.Steps
	stored.Steps = nil
	switch {
	case wrote:
		o.log.InfoContext(ctx, "run finished", "run", stored.ID, "status", string(stored.Status), "error", stored.Error)
		o.sendFinal(ctx, stored, steps)
		if stored.Trigger == "backfill" {
			// A slot is free: start the backfill's next date.
			if _, err := o.launchPendingOf(ctx, stored.Pipeline); err != nil {
				o.log.WarnContext(ctx, "could not launch the next backfill run", "error", err.Error())
			}
		}
	case o.owed(stored):
		o.sendFinal(ctx, stored, steps) // a crash after the commit left it owed
	}
}

// owedGrace is how long the instance that ended a run has to send its final
// notification before others (duplicates, the sweeper) send it instead.
const owedGrace = 30 * time.Second

// owed reports whether r's final notification is owed and no longer being
// sent by the instance that ended the run.
func (o *Orchestrator) owed(r Run) bool {
	return r.Notify == NotifyPending && o.now().Sub(r.FinishedAt) > owedGrace
}

// sendFinal hands the final notification to the background sender, which
// records it as sent once every notifier accepted it: the step never waits on
// a notifier. Not sent (refused, or given up at shutdown), it stays owed:
// a later delivery of this run's tasks or the sweeper sends it again. At least
// once, never lost.
func (o *Orchestrator) sendFinal(ctx context.Context, r Run, stepRuns []StepRun) {
	e := finalEvent(r, stepRuns)
	once := "final:" + r.ID + "@" + r.FinishedAt.Format(time.RFC3339Nano)
	queued := o.sender.send(sendJob{ctx: unbound(ctx), e: e, once: once, after: func(ctx context.Context, err error) {
		if err == nil {
			o.recordFinal(ctx, r)
		}
	}})
	if !queued {
		o.log.WarnContext(ctx, "final notification not queued; it stays owed", "run", r.ID)
	}
}

// sendFinalNow sends the final notification and records it, waiting for the
// notifier: the sweeper's send of an owed one.
func (o *Orchestrator) sendFinalNow(ctx context.Context, r Run, stepRuns []StepRun) {
	if err := o.notifyNow(ctx, finalEvent(r, stepRuns)); err != nil {
		return // still owed
	}
	o.recordFinal(ctx, r)
}

// finalEvent is the final notification of r, which has ended.
func finalEvent(r Run, stepRuns []StepRun) Event {
	kind := EventRunSucceeded
	switch r.Status {
	case RunFailed:
		kind = EventRunFailed
	case RunCancelled:
		kind = EventRunCancelled
	}
	full := r
	full.Steps = stepRuns
	return Event{Kind: kind, Run: full}
}

// recordFinal records r's final notification as sent.
func (o *Orchestrator) recordFinal(ctx context.Context, r Run) {
	ctx, cancel := context.WithTimeout(ctx, bookkeepingTimeout)
	defer cancel()
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

// failOverdue fails a run that exceeded its max_run_duration. Its steps that
// have not started are skipped first (saying why), so that their deliveries,
// which read no run record on a first attempt, do not run them; a step in
// flight finishes, and its successors are skipped.
func (o *Orchestrator) failOverdue(ctx context.Context, r Run, msg string) error {
	now := o.now().UTC()
	for _, s := range r.Steps {
		waiting := s.Status == StepWaiting && !now.Before(s.LeaseUntil)
		if s.Status != StepPending && s.Status != StepRetrying && !waiting {
			continue
		}
		was := s
		s.Status, s.Error, s.UpdatedAt, s.LeaseUntil = StepSkipped, "not run: run failed: "+msg, now, time.Time{}
		if waiting {
			s.Error = "stopped waiting: run failed: " + msg
		}
		_, err := o.ledger.UpdateStep(ctx, s)
		if err != nil && !errors.Is(err, ErrConflict) {
			return fmt.Errorf("fail %s: skip %s: %w", r.ID, s.Step, err)
		}
		if err == nil {
			o.cancelRemoteOf(ctx, r, was) // a waiting step's remote work is abandoned
		}
		// A conflict is a delivery claiming it now: it runs, and its
		// successors find themselves skipped or the run failed.
	}
	return o.finishRunFrom(ctx, r, RunFailed, msg)
}
