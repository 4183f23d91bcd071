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
//   - Every step written (CreateRun, UpdateStep, and any other write of a
//     step) is stored as s.WithHistory(): its attempt history brought up to
//     date in that same write. Every step read is returned as WithHistory()
//     of the stored one, so a record stored without a history shows its
//     last attempt.
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

// Namespacer is implemented by a ledger that knows where its records live (a
// Firestore project, database and collection; a bbolt file's id). Task names
// include the namespace, so that ledgers sharing one queue never collide: a
// name taken by another ledger's task would be "already exists" to this one,
// and its run would never advance. Config.Namespace overrides it.
type Namespacer interface {
	Namespace() string
}

// RunFilter selects runs for ListRuns. Zero fields match everything.
//
// A listing is ordered by creation time, newest first (OldestFirst reverses
// it), ties broken by run ID in the same direction. With NotifyPending it is
// ordered by finish time instead, and Since, Before and Cursor bound the
// finish time.
type RunFilter struct {
	Pipeline string
	Status   RunStatus
	// NotifyPending keeps only runs whose final notification is owed
	// (Run.Notify is NotifyPending), ordered by finish time. It cannot be
	// combined with Pipeline or Status (ErrInvalid): a backend answers it
	// from an index of owed runs, not by scanning.
	NotifyPending bool
	// Since keeps runs created (finished, with NotifyPending) at or after it.
	Since time.Time
	// Before keeps runs created (finished, with NotifyPending) strictly
	// before it.
	Before time.Time
	// OldestFirst lists in ascending time order.
	OldestFirst bool
	// Cursor continues a listing: only runs strictly past it in the
	// listing's order are returned. Set it with Next.
	Cursor *RunCursor
	// Limit caps the number of runs returned; 0 means 100.
	Limit int
}

// RunCursor is a place in a listing: the ordering time and ID of a run.
type RunCursor struct {
	At    time.Time
	RunID string
}

// Next returns f continued past last, the last run of a page listed with f.
func (f RunFilter) Next(last Run) RunFilter {
	at := last.CreatedAt
	if f.NotifyPending {
		at = last.FinishedAt
	}
	f.Cursor = &RunCursor{At: at, RunID: last.ID}
	return f
}

// OrderTime is the time r is ordered by in a listing with f.
func (f RunFilter) OrderTime(r Run) time.Time {
	if f.NotifyPending {
		return r.FinishedAt
	}
	return r.CreatedAt
}
