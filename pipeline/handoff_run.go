package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// transitionHandOff commits done's linear transition (Transitioner) and,
// in the same commit, the claims of those successors whose delivery would
// claim them at once (handOffClaim), kept for their deliveries to this
// process (reservations). Successors whose body this binary lacks are not
// claimed (their delivery fails them, saying why). Without room for the
// reservations it is a plain Transition.
func (o *Orchestrator) transitionHandOff(ctx context.Context, ho HandOff, rg *runGraph, done StepRun, tasks []Task, handled Task) (StepRun, error) {
	now := o.now().UTC()
	// Few successors (usually one): slices, not maps.
	keys := make([]resKey, 0, len(tasks))
	leases := make([]time.Duration, 0, len(tasks))
	for _, t := range tasks {
		if _, err := rg.body(t.Payload.Step); err != nil || t.Payload.RunID != done.RunID {
			continue
		}
		keys = append(keys, resKey{run: done.RunID, step: t.Payload.Step, gen: t.Payload.Generation})
		leases = append(leases, rg.requestTimeout(t.Payload.Step)+o.leaseGrace)
	}
	var held []*reservation
	if len(keys) > 0 {
		held = o.reserved.hold(now, keys)
	}
	if held == nil {
		return ho.Transition(ctx, done, tasks, handled)
	}
	claim := func(succ StepRun) (StepRun, bool) {
		for i, k := range keys {
			if k.step == succ.Step && succ.RunID == done.RunID {
				return handOffClaim(handOff{Pred: done, Succ: succ, Gen: k.gen, Now: now, Lease: leases[i]})
			}
		}
		return StepRun{}, false
	}
	stored, claimed, err := ho.TransitionHandOff(ctx, done, tasks, handled, claim)
	for i, k := range keys {
		var c StepRun
		ok := false
		for _, x := range claimed {
			if err == nil && keyOf(x) == k {
				c, ok = x, true
			}
		}
		if !o.reserved.settle(k, held[i], c, ok) && ok {
			// Closed meanwhile (shutdown): give the claim back at once.
			if gerr := o.giveBack(ctx, c, givenBackAtShutdown); gerr != nil {
				o.log.WarnContext(ctx, "could not give back a handed-off claim; it is taken over after its lease", "run", c.RunID, "step", c.Step, "error", gerr.Error())
			}
		}
	}
	return stored, err
}

// givenBackAtShutdown is why a handed-off claim is given back when the
// orchestrator closes (Close, or a hand-off settling after it).
const givenBackAtShutdown = "given back at shutdown"

// giveBack releases a handed-off claim whose body never ran: the step is
// claimable at once, the attempt not counted.
func (o *Orchestrator) giveBack(ctx context.Context, claimed StepRun, why string) error {
	_, err := o.release(ctx, claimed, claimed.Attempts-1,
		fmt.Sprintf("attempt %d claimed by its predecessor's hand-off, %s before its body started; not counted", claimed.Attempts, why))
	if err != nil {
		return fmt.Errorf("give back %s of %s: %w", claimed.Step, claimed.RunID, err)
	}
	return nil
}

// releaseReserved gives back every claim this process handed off and has
// not run, and takes no more (Close). A claim changed since (a take-over
// after its lease) is left alone.
func (o *Orchestrator) releaseReserved(ctx context.Context) error {
	var errs []error
	for _, c := range o.reserved.drain() {
		err := o.giveBack(ctx, c, givenBackAtShutdown)
		if err != nil && !errors.Is(err, ErrConflict) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
