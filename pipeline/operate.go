package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// EnqueueRequest asks for one step of a run to be enqueued ad hoc.
type EnqueueRequest struct {
	// RunID names the run; or Pipeline + Date (+ Key) do.
	RunID    string            `json:"run_id,omitempty"`
	Pipeline string            `json:"pipeline,omitempty"`
	Date     string            `json:"date,omitempty"`
	Key      string            `json:"key,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
	Step     string            `json:"step"`
	// Only runs just this step, without chaining on to its successors.
	Only bool `json:"only,omitempty"`
	// Force runs the step even if its predecessors have not succeeded or it
	// already succeeded, in a new generation (so queue name dedup does not
	// swallow it).
	Force bool `json:"force,omitempty"`
}

// EnqueueResult reports what an ad hoc enqueue did.
type EnqueueResult struct {
	RunID      string `json:"run_id"`
	Step       string `json:"step"`
	Generation int    `json:"generation"`
	TaskName   string `json:"task_name"`
	Created    bool   `json:"run_created"`
}

// Enqueue puts one step of a run on the queue, as an operator asked. Without
// Force it obeys the gate: the step's predecessors must have succeeded and the
// step must not have succeeded already. A step that failed or was cancelled
// (or is forced) gets a new generation, and so a new task name. A run that had
// ended is running again.
func (o *Orchestrator) Enqueue(ctx context.Context, req EnqueueRequest) (EnqueueResult, error) {
	if err := validParams(req.Params); err != nil {
		return EnqueueResult{}, err
	}
	_, r, created, err := o.runFor(ctx, req)
	if err != nil {
		return EnqueueResult{}, err
	}
	rg, err := o.graphForRun(r)
	if err != nil {
		return EnqueueResult{}, err
	}
	gs := rg.Step(req.Step)
	if gs == nil {
		return EnqueueResult{}, fmt.Errorf("%w: run %s (definition %s) has no step %q (steps: %v)", ErrNotFound, r.ID, rg.Version, req.Step, rg.StepNames())
	}
	got, err := o.ledger.GetSteps(ctx, r.ID, append([]string{req.Step}, gs.After...)...)
	if err != nil {
		return EnqueueResult{}, fmt.Errorf("enqueue %s of %s: %w", req.Step, r.ID, err)
	}
	cur, preds := got[0], got[1:]
	if err := o.checkEnqueue(r.ID, req, cur, preds); err != nil {
		return EnqueueResult{}, err
	}
	gen := cur.Generation
	switch {
	case req.Force || cur.Status != StepPending || cur.Attempts > 0:
		// A new generation (a new task name), recording force and only in
		// the step so that every re-enqueue of it keeps them.
		if err := o.renew(ctx, cur, req.Force, req.Only); err != nil {
			return EnqueueResult{}, fmt.Errorf("enqueue %s of %s: %w", req.Step, r.ID, err)
		}
		// A forced re-run of a waiting step abandons the work it waited
		// on (its checks are now stale): stop it where the kind can.
		o.cancelRemoteOf(ctx, r, cur)
		gen = cur.Generation + 1
	case cur.Only != req.Only:
		// Still pending in its generation: record only (or its absence).
		next := cur
		next.Only, next.UpdatedAt = req.Only, o.now().UTC()
		if _, err := o.ledger.UpdateStep(ctx, next); errors.Is(err, ErrConflict) {
			return EnqueueResult{}, fmt.Errorf("%w: %s of %s changed meanwhile; try again", ErrConflict, req.Step, r.ID)
		} else if err != nil {
			return EnqueueResult{}, fmt.Errorf("enqueue %s of %s: %w", req.Step, r.ID, err)
		}
	}
	fresh, err := o.ledger.GetRun(ctx, r.ID)
	if err != nil {
		return EnqueueResult{}, fmt.Errorf("enqueue %s of %s: %w", req.Step, r.ID, err)
	}
	if err := o.reopen(ctx, fresh, req.Only); err != nil {
		return EnqueueResult{}, err
	}
	t, err := o.enqueueOperated(ctx, rg, r, req, gen)
	if err != nil {
		return EnqueueResult{}, err
	}
	t, err = o.enqueueAgainIfStopped(ctx, rg, r, req, t)
	if err != nil {
		return EnqueueResult{}, err
	}
	gen = t.Payload.Generation
	o.log.InfoContext(ctx, "step enqueued by an operator", "run", r.ID, "step", req.Step, "generation", gen, "force", req.Force, "only", req.Only)
	return EnqueueResult{RunID: r.ID, Step: req.Step, Generation: gen, TaskName: t.Name, Created: created}, nil
}

// enqueueAgainIfStopped handles a delivery of t's generation that came
// between the enqueue's read of the step and the reopen of its run: it found
// the run still ended, stopped the step (cancelled or skipped) and used up
// the task name, so the queue took t as a duplicate and nothing would run
// the step again. Once the run is open, such a step goes again in a new
// generation; a run ended again since (a cancel) is left as it is. It
// returns the task that stands.
func (o *Orchestrator) enqueueAgainIfStopped(ctx context.Context, rg *runGraph, r Run, req EnqueueRequest, t Task) (Task, error) {
	for range 3 {
		got, err := o.ledger.GetSteps(ctx, r.ID, req.Step)
		if err != nil {
			return t, fmt.Errorf("enqueue %s of %s: %w", req.Step, r.ID, err)
		}
		cur := got[0]
		if cur.Generation != t.Payload.Generation || (cur.Status != StepCancelled && cur.Status != StepSkipped) {
			return t, nil
		}
		run, err := o.ledger.GetRun(ctx, r.ID)
		if err != nil {
			return t, fmt.Errorf("enqueue %s of %s: %w", req.Step, r.ID, err)
		}
		if run.Status.Terminal() {
			return t, nil
		}
		if err := o.renew(ctx, cur, req.Force, req.Only); errors.Is(err, ErrConflict) {
			continue // changed meanwhile: look again
		} else if err != nil {
			return t, fmt.Errorf("enqueue %s of %s: %w", req.Step, r.ID, err)
		}
		if t, err = o.enqueueOperated(ctx, rg, r, req, cur.Generation+1); err != nil {
			return t, err
		}
	}
	return t, nil
}

// enqueueOperated puts the task of req's step of r in generation gen on the
// queue, carrying the operator's force and only.
func (o *Orchestrator) enqueueOperated(ctx context.Context, rg *runGraph, r Run, req EnqueueRequest, gen int) (Task, error) {
	t := o.task(rg, r.ID, r.Date, r.Params, req.Step, gen)
	t.Payload.Force, t.Payload.Only = req.Force, req.Only
	if err := o.queue.Enqueue(ctx, t); err != nil {
		return t, fmt.Errorf("enqueue %s of %s (generation %d): %w", req.Step, r.ID, gen, err)
	}
	return t, nil
}

// checkEnqueue refuses an operator's enqueue of cur (with predecessors
// preds) that the gate or the step's state forbids, saying what to do.
func (o *Orchestrator) checkEnqueue(runID string, req EnqueueRequest, cur StepRun, preds []StepRun) error {
	now := o.now().UTC()
	if cur.Status == StepRunning && now.Before(cur.LeaseUntil) {
		return fmt.Errorf("%w: %s of %s is running (attempt %d/%d, lease until %s); wait for it or cancel the run", ErrLeaseHeld, req.Step, runID, cur.Attempts, cur.MaxAttempts, cur.LeaseUntil.Format(time.RFC3339))
	}
	if cur.Status == StepWaiting && now.Before(cur.LeaseUntil) {
		return fmt.Errorf("%w: %s of %s is being checked (check %d, lease until %s); try again in a moment", ErrLeaseHeld, req.Step, runID, cur.Check, cur.LeaseUntil.Format(time.RFC3339))
	}
	if req.Force {
		return nil
	}
	if cur.Status == StepWaiting {
		return fmt.Errorf("%w: %s of %s is waiting on its asynchronous work since %s (next check %s); --force starts it again, cancelling that work where its kind can", ErrConflict, req.Step, runID, cur.WaitingSince.Format(time.RFC3339), cur.NextCheckAt.Format(time.RFC3339))
	}
	var waiting []string
	for _, p := range preds {
		if p.Status != StepSucceeded {
			waiting = append(waiting, fmt.Sprintf("%s (%s)", p.Step, p.Status))
		}
	}
	if len(waiting) > 0 {
		return fmt.Errorf("%w: %s of %s waits for %v; --force runs it anyway", ErrNotReady, req.Step, runID, waiting)
	}
	switch cur.Status {
	case StepSucceeded:
		return fmt.Errorf("%w: %s of %s already succeeded (generation %d); --force runs it again", ErrConflict, req.Step, runID, cur.Generation)
	case StepRetrying:
		return fmt.Errorf("%w: %s of %s is being retried by the queue (attempt %d/%d)", ErrConflict, req.Step, runID, cur.Attempts, cur.MaxAttempts)
	}
	return nil
}

// renew puts a step back to pending in a new generation (a new task name).
func (o *Orchestrator) renew(ctx context.Context, cur StepRun, forced, only bool) error {
	next := cur
	next.Generation++
	next.Status, next.Attempts, next.Error, next.Output = StepPending, 0, "", nil
	next.Forced, next.Only, next.Inputs = forced, only, nil
	next = clearWait(next)
	next.StartedAt, next.FinishedAt, next.LeaseUntil = time.Time{}, time.Time{}, time.Time{}
	next.UpdatedAt = o.now().UTC()
	_, err := o.ledger.UpdateStep(ctx, next)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("%w: %s changed meanwhile; try again", ErrConflict, cur.Step)
	}
	return err
}

// noteOnly marks a run whose last operator action was an --only enqueue: the
// sweeper then leaves its other ready steps alone.
const noteOnly = "operator.only"

// runFor finds (or, given a pipeline and date, creates without launching) the
// run an operator request names.
func (o *Orchestrator) runFor(ctx context.Context, req EnqueueRequest) (*Definition, Run, bool, error) {
	if req.RunID != "" {
		pipe, _, err := SplitRunID(req.RunID)
		if err != nil {
			return nil, Run{}, false, err
		}
		def, err := o.pipelineFor(pipe)
		if err != nil {
			return nil, Run{}, false, err
		}
		r, err := o.ledger.GetRun(ctx, req.RunID)
		if err != nil {
			return nil, Run{}, false, fmt.Errorf("run %s: %w", req.RunID, err)
		}
		r.Steps = nil
		return def, r, false, nil
	}
	if req.Date == "" && req.Key == "" {
		return nil, Run{}, false, fmt.Errorf("%w: a run (run_id) or a date is required", ErrInvalid)
	}
	// Refuse before creating anything: a run created for a request that is
	// then refused would be left running with nothing enqueued.
	def, err := o.pipelineFor(req.Pipeline)
	if err != nil {
		return nil, Run{}, false, err
	}
	sd := def.Step(req.Step)
	if sd == nil {
		return nil, Run{}, false, fmt.Errorf("%w: pipeline %q has no step %q (steps: %v)", ErrNotFound, def.Name, req.Step, def.StepNames())
	}
	if !req.Force && len(sd.After) > 0 {
		date, err := runDate(StartRequest{Date: req.Date}, def.Location, o.now())
		if err != nil {
			return nil, Run{}, false, err
		}
		key := req.Key
		if key == "" {
			key = date
		}
		if _, err := o.ledger.GetRun(ctx, RunID(def.Name, key)); errors.Is(err, ErrNotFound) {
			return nil, Run{}, false, fmt.Errorf("%w: run %s does not exist, so %s waits for %v; enqueue a root step (%v) or use --force", ErrNotReady, RunID(def.Name, key), req.Step, sd.After, def.Roots())
		} else if err != nil {
			return nil, Run{}, false, fmt.Errorf("enqueue %s: %w", req.Step, err)
		}
	}
	def, r, created, err := o.create(ctx, StartRequest{Pipeline: req.Pipeline, Date: req.Date, Key: req.Key, Params: req.Params, Trigger: "adhoc"}, RunRunning)
	return def, r, created, err
}

// reopen marks an ended run as running again (an operator re-ran part of it),
// and records whether that was an --only enqueue. It always writes the run,
// bumping its epoch: a finish decided on a read from before the reopen then
// conflicts and is decided again on the steps as they are now.
func (o *Orchestrator) reopen(ctx context.Context, r Run, only bool) error {
	_, _, err := o.updateRun(ctx, r, func(x *Run) bool {
		x.Epoch++
		notes := map[string]string{}
		for k, v := range x.Notes {
			notes[k] = v
		}
		delete(notes, noteOnly)
		if only {
			notes[noteOnly] = "1"
		}
		x.Notes = notes
		x.UpdatedAt = o.now().UTC()
		if x.Status != RunRunning {
			x.Status, x.Error, x.FinishedAt, x.Notify = RunRunning, "", time.Time{}, NotifyNone
			x.StartedAt = x.UpdatedAt
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("reopen %s: %w", r.ID, err)
	}
	return nil
}

// ResumeResult lists the steps a resume enqueued.
type ResumeResult struct {
	RunID    string          `json:"run_id"`
	Enqueued []EnqueueResult `json:"enqueued"`
}

// Resume re-enqueues a run from its failed, cancelled or never-run steps
// whose predecessors succeeded, keeping what succeeded. It decides everything
// from one read before it writes: a resume it refuses changes nothing.
func (o *Orchestrator) Resume(ctx context.Context, runID string) (ResumeResult, error) {
	if _, _, err := SplitRunID(runID); err != nil {
		return ResumeResult{}, err
	}
	r, err := o.ledger.GetRun(ctx, runID)
	if err != nil {
		return ResumeResult{}, fmt.Errorf("resume %s: %w", runID, err)
	}
	rg, err := o.graphForRun(r)
	if err != nil {
		return ResumeResult{}, err
	}
	res := ResumeResult{RunID: runID, Enqueued: []EnqueueResult{}}
	ready, renew := resumePlan(rg.Graph, r.Steps)
	if len(ready) == 0 {
		if r.Status == RunSucceeded {
			return res, fmt.Errorf("%w: run %s already succeeded; enqueue a step with --force to run it again", ErrConflict, runID)
		}
		return res, fmt.Errorf("%w: run %s has no failed or pending step whose predecessors succeeded (steps running or retrying are left to the queue)", ErrConflict, runID)
	}
	byName := map[string]StepRun{}
	for _, s := range r.Steps {
		byName[s.Step] = s
	}
	waiting := renew // put back to pending for their predecessors to enqueue
	for _, name := range ready {
		// Each step resumed gets a new generation (a new task name): a task
		// of its current generation may exist already, and a delivery of it
		// while the run is still ended (before the reopen below) would use
		// the name and leave the step cancelled, swallowing our enqueue.
		renew = append(renew[:len(renew):len(renew)], byName[name])
	}
	for _, s := range renew {
		// Enqueued by its predecessors when they succeed; a step a cancel
		// (or the sweeper) marked must be pending again for that.
		if err := o.renew(ctx, s, false, false); err != nil {
			return res, fmt.Errorf("resume %s: %w", runID, err)
		}
	}
	for _, name := range ready {
		e, err := o.Enqueue(ctx, EnqueueRequest{RunID: runID, Step: name})
		if err != nil {
			return res, err
		}
		res.Enqueued = append(res.Enqueued, e)
	}
	// A step put back to pending waits for its predecessors. One of them
	// that finished before the reopen above enqueued it at once, and that
	// delivery, finding the run still ended, cancelled it again in its new
	// generation and used up its task name: nothing would enqueue it again.
	// Now that the run is open, such a step is enqueued here.
	for _, was := range waiting {
		got, err := o.ledger.GetSteps(ctx, runID, append([]string{was.Step}, rg.Step(was.Step).After...)...)
		if err != nil {
			return res, fmt.Errorf("resume %s: %w", runID, err)
		}
		cur := got[0]
		if cur.Generation <= was.Generation || (cur.Status != StepCancelled && cur.Status != StepSkipped) || !allSucceeded(got[1:]) {
			continue
		}
		e, err := o.Enqueue(ctx, EnqueueRequest{RunID: runID, Step: was.Step})
		if err != nil {
			return res, err
		}
		res.Enqueued = append(res.Enqueued, e)
	}
	return res, nil
}

// allSucceeded reports whether every step of steps succeeded.
func allSucceeded(steps []StepRun) bool {
	for _, s := range steps {
		if s.Status != StepSucceeded {
			return false
		}
	}
	return true
}

// resumePlan lists, in graph order, the steps a resume enqueues (not in
// flight, every predecessor succeeded, and not succeeded unless on an input a
// predecessor has since superseded: a cancel during a re-run cascade leaves
// such a step) and the cancelled or skipped steps it puts back to pending for
// their predecessors to enqueue.
func resumePlan(g *Graph, stepRuns []StepRun) (ready []string, renew []StepRun) {
	byName := map[string]StepRun{}
	for _, s := range stepRuns {
		byName[s.Step] = s
	}
	for _, gs := range g.Steps {
		s, ok := byName[gs.Name]
		if !ok || s.Status == StepRunning || s.Status == StepRetrying || s.Status == StepWaiting {
			continue
		}
		all := true
		preds := make([]StepRun, 0, len(gs.After))
		for _, a := range gs.After {
			if byName[a].Status != StepSucceeded {
				all = false
			}
			preds = append(preds, byName[a])
		}
		if s.Status == StepSucceeded && (!all || superseded(s, preds) == nil) {
			continue
		}
		switch {
		case all:
			ready = append(ready, gs.Name)
		case s.Status == StepCancelled || s.Status == StepSkipped:
			renew = append(renew, s)
		}
	}
	return ready, renew
}

// Cancel stops a run: no further step starts. A step running now finishes (its
// result is recorded) or is abandoned; its successors do not start.
func (o *Orchestrator) Cancel(ctx context.Context, runID string) (Run, error) {
	if _, _, err := SplitRunID(runID); err != nil {
		return Run{}, err
	}
	r, err := o.ledger.GetRun(ctx, runID)
	if err != nil {
		return Run{}, o.catalog.ExplainMissingRun(runID, fmt.Errorf("cancel %s: %w", runID, err))
	}
	if r.Status.Terminal() {
		return r, fmt.Errorf("%w: run %s already %s", ErrConflict, runID, r.Status)
	}
	// Steps first, so that nothing starts between the run's and its steps'
	// change; a CAS lost to a claim leaves that step running to its end.
	var checking []StepRun
	for _, s := range r.Steps {
		for range 3 {
			// A claim this process handed off and has not delivered yet:
			// its body has not started, so it never starts.
			reserved := s.Status == StepRunning && o.reserved.take(ctx, s)
			if !reserved && s.Status != StepPending && s.Status != StepRetrying && s.Status != StepWaiting {
				break
			}
			if s.Status == StepWaiting && o.now().Before(s.LeaseUntil) {
				checking = append(checking, s) // being checked: the check's result stands, the next check sees the run cancelled
				break
			}
			was := s
			s.Status, s.UpdatedAt, s.LeaseUntil = StepCancelled, o.now().UTC(), time.Time{}
			if reserved {
				s.Attempts-- // claimed, never run: not counted
			}
			_, err := o.ledger.UpdateStep(ctx, s)
			if err == nil {
				if !reserved {
					o.cancelRemoteOf(ctx, r, was)
				}
				break
			}
			if !errors.Is(err, ErrConflict) {
				return r, fmt.Errorf("cancel %s: %w", runID, err)
			}
			got, err := o.ledger.GetSteps(ctx, runID, s.Step)
			if err != nil {
				return r, fmt.Errorf("cancel %s: %w", runID, err)
			}
			s = got[0]
		}
	}
	if err := o.finishRun(ctx, runID, RunCancelled, "cancelled by an operator"); err != nil {
		return r, err
	}
	for _, s := range checking {
		o.hurryCheck(ctx, r, s)
	}
	return o.ledger.GetRun(ctx, runID)
}
