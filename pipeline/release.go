package pipeline

import (
	"context"
	"fmt"
	"time"
)

// release gives back a claimed step without counting its attempt: the step
// is retrying again, with the attempts it had before the claim (attempts),
// and no lease, so that the queue's retry claims it at once. why is the
// step's error. Used when shutdown interrupts a body and when a request ends
// before its body started.
func (o *Orchestrator) release(ctx context.Context, claimed StepRun, attempts int, why string) (StepRun, error) {
	rel := claimed
	now := o.now().UTC()
	rel.Status, rel.Attempts, rel.Error = StepRetrying, attempts, why
	rel.LeaseUntil, rel.FinishedAt, rel.UpdatedAt = time.Time{}, now, now
	return o.ledger.UpdateStep(ctx, rel)
}

// releaseUnstarted releases a step claimed for an attempt whose request
// ended before its body started. The write is detached from the request.
func (o *Orchestrator) releaseUnstarted(ctx context.Context, res StepResult, claimed StepRun, attempts int) (StepResult, error) {
	cause := context.Cause(ctx)
	ctx, cancel := detach(ctx)
	defer cancel()
	why := fmt.Sprintf("attempt %d released before its body started: its request ended (%v); not counted", claimed.Attempts, cause)
	stored, err := o.release(ctx, claimed, attempts, why)
	if err != nil {
		return res, fmt.Errorf("release %s of %s after its request ended: %w", claimed.Step, claimed.RunID, err)
	}
	o.log.WarnContext(ctx, "request ended during the claim; step released for the retry", "run", claimed.RunID, "step", claimed.Step, "attempt", claimed.Attempts)
	res.Status, res.Attempt, res.Error = stored.Status, stored.Attempts, stored.Error
	return res, fmt.Errorf("%s attempt %d released: its request ended before the body started: %w", claimed.Step, claimed.Attempts, cause)
}
