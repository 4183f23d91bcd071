package pipeline

import (
	"context"
	"fmt"
)

// Launcher is an optional capability of a Ledger whose queue keeps its tasks
// in the same store (local mode), as Transitioner is: a new run is created
// already running, with its root steps' tasks enqueued, in one transaction,
// so that a start costs one commit instead of three (create, enqueue the
// roots, mark the run running). A ledger that implements it must be given to
// the orchestrator with the queue it writes to as Config.Queue.
type Launcher interface {
	// CreateRunLaunched commits, in one durable transaction, all or nothing
	// of: r and steps, created as CreateRun creates them, and tasks,
	// enqueued as Queue.Enqueue does. When the run exists it writes nothing
	// (tasks included) and returns the stored run and false, as CreateRun
	// does.
	CreateRunLaunched(ctx context.Context, r Run, steps []StepRun, tasks []Task) (Run, bool, error)
}

// startLaunched creates req's run running, with its roots enqueued, in one
// commit (Launcher). A run that exists is returned as found (created false):
// Start goes on with it as it does without a Launcher.
func (o *Orchestrator) startLaunched(ctx context.Context, l Launcher, req StartRequest) (*Definition, Run, bool, error) {
	def, run, srs, err := o.newRun(req, RunRunning)
	if err != nil {
		return nil, Run{}, false, err
	}
	run.StartedAt = run.CreatedAt
	rg, err := o.graphForRun(run)
	if err != nil {
		return nil, Run{}, false, fmt.Errorf("create %s: %w", run.ID, err)
	}
	roots := rg.Roots()
	tasks := make([]Task, len(roots))
	for i, root := range roots {
		tasks[i] = o.task(rg, run.ID, run.Date, run.Params, root, 1)
	}
	stored, created, err := l.CreateRunLaunched(ctx, run, srs, tasks)
	if err != nil {
		return nil, Run{}, false, fmt.Errorf("create %s: %w", run.ID, err)
	}
	return def, stored, created, nil
}
