package pipeline

import "context"

// Transitioner is an optional capability of a Ledger whose queue keeps its
// tasks in the same store, so that one transaction can write both (local
// mode: the ledger and the local queue share one bbolt file). The
// orchestrator uses it on the linear path (see linearSuccessors) when its
// Ledger implements it; otherwise, and on every other path, it writes with
// UpdateStep and then Queue.Enqueue. A ledger that implements it must be
// given to the orchestrator with the queue it writes to as Config.Queue.
type Transitioner interface {
	// Transition commits, in one durable transaction, all or nothing of:
	//   - s, written as UpdateStep writes it: only if s.Version matches the
	//     stored version (ErrConflict otherwise, ErrNotFound for a missing
	//     step; then nothing at all is written);
	//   - tasks, enqueued as Queue.Enqueue does (a name already used is
	//     skipped, not an error);
	//   - the deletion of handled, the task whose delivery is being handled,
	//     if it is that queue's task in flight with the same name, run, step,
	//     generation and check (anything else is left alone, so a forged or
	//     stale name deletes nothing).
	// It returns s with its new Version.
	Transition(ctx context.Context, s StepRun, tasks []Task, handled Task) (StepRun, error)
}
