package pipeline

import (
	"context"
	"time"
)

// Ledger is the durable record of runs and steps. It is a small store with
// compare-and-swap writes; the step state machine lives in the Orchestrator, so
// a backend only has to keep these promises (checked by ledgertest.Run):
//
//   - CreateRun writes the run and all of its steps atomically, or nothing. If a
//     run with that ID exists it changes nothing and returns the stored run
//     (without steps) and created=false.
//   - UpdateStep and UpdateRun write only when the given Version equals the stored
//     one, and return the record with its new Version. Otherwise they return an
//     error matching ErrConflict and change nothing. Versions are opaque and
//     strictly change on every write. A missing record is ErrNotFound.
//   - Reads return ErrNotFound for a missing run or step.
//   - Marks (see Mark) keep the same promises: CreateMark creates or returns
//     the stored mark with created=false, UpdateMark writes only on a matching
//     Version (ErrConflict otherwise, ErrNotFound when missing), GetMark
//     returns ErrNotFound for a missing mark.
//
// Every record is one unit of contention: a backend must not serialise writes to
// different steps of a run through one shared document.
type Ledger interface {
	// CreateRun creates run r with steps (all with the run's ID).
	CreateRun(ctx context.Context, r Run, steps []StepRun) (stored Run, created bool, err error)
	// GetRun returns the run with all of its steps.
	GetRun(ctx context.Context, runID string) (Run, error)
	// GetSteps returns the named steps of a run, in the order asked.
	GetSteps(ctx context.Context, runID string, steps ...string) ([]StepRun, error)
	// UpdateStep writes s if s.Version matches the stored version.
	UpdateStep(ctx context.Context, s StepRun) (StepRun, error)
	// UpdateRun writes r's own fields (not its steps) if r.Version matches.
	UpdateRun(ctx context.Context, r Run) (Run, error)
	// ListRuns returns runs (without steps) matching f, newest first.
	ListRuns(ctx context.Context, f RunFilter) ([]Run, error)
	// CreateMark creates m unless a mark with its ID exists, which it returns.
	CreateMark(ctx context.Context, m Mark) (stored Mark, created bool, err error)
	// GetMark returns the mark with that ID.
	GetMark(ctx context.Context, id string) (Mark, error)
	// UpdateMark writes m if m.Version matches the stored version.
	UpdateMark(ctx context.Context, m Mark) (Mark, error)
	// Close releases the ledger's resources.
	Close() error
}

// RunFilter selects runs for ListRuns. Zero fields match everything.
type RunFilter struct {
	Pipeline string
	Status   RunStatus
	// Since keeps runs created at or after it.
	Since time.Time
	// Before keeps runs created strictly before it: the next page of a
	// newest-first listing starts before the last run of the previous one.
	Before time.Time
	// Limit caps the number of runs returned; 0 means 100.
	Limit int
}
