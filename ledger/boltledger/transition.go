package boltledger

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// TaskWriter is a queue that keeps its tasks in the ledger's bbolt file and
// can write them in the ledger's transactions (queue/local.Queue).
type TaskWriter interface {
	// TransitionWrites prepares the enqueue of tasks and the deletion of the
	// handled task: write runs in the shared transaction (maybe more than
	// once), after runs once it committed (true) or did not (false).
	TransitionWrites(tasks []pipeline.Task, handled pipeline.Task) (write func(*bbolt.Tx) error, after func(committed bool), err error)
}

// Store is the ledger together with the queue that shares its file: a
// pipeline.Ledger with the pipeline.Transitioner capability, so that a linear
// step transition is one commit.
type Store struct {
	*Ledger
	tasks TaskWriter
}

var (
	_ pipeline.Ledger       = (*Store)(nil)
	_ pipeline.Transitioner = (*Store)(nil)
)

// WithTasks returns the ledger with q, the queue storing its tasks in the
// same bbolt file, whose writes must share the ledger's commits (the queue's
// Config.Commit is l.Committer().Batch). Give the orchestrator the Store as
// its ledger and q as its queue.
func (l *Ledger) WithTasks(q TaskWriter) *Store {
	return &Store{Ledger: l, tasks: q}
}

// Transition writes s (compare-and-swap on its version), enqueues tasks and
// deletes the handled task in one transaction: one commit, all or nothing.
func (st *Store) Transition(ctx context.Context, s pipeline.StepRun, tasks []pipeline.Task, handled pipeline.Task) (pipeline.StepRun, error) {
	if err := ctx.Err(); err != nil {
		return pipeline.StepRun{}, fmt.Errorf("boltledger: transition of %s/%s: %w", s.RunID, s.Step, err)
	}
	rec := newStepRecord(s)
	val, err := encode(0, rec)
	if err != nil {
		return pipeline.StepRun{}, fmt.Errorf("boltledger: transition of %s/%s: %w", s.RunID, s.Step, err)
	}
	writeTasks, after, err := st.tasks.TransitionWrites(tasks, handled)
	if err != nil {
		return pipeline.StepRun{}, fmt.Errorf("boltledger: transition of %s/%s: %w", s.RunID, s.Step, err)
	}
	key := stepKey(s.RunID, s.Step)
	var (
		outcome error
		version int64
	)
	err = st.write(func(tx *bbolt.Tx) error {
		var err error
		outcome, version, err = casStep(tx, key, val, s.Version)
		if err != nil || outcome != nil {
			return err // a lost compare-and-swap writes nothing, tasks included
		}
		return writeTasks(tx)
	})
	after(err == nil && outcome == nil)
	if err == nil {
		err = outcome
	}
	if err != nil {
		return pipeline.StepRun{}, fmt.Errorf("boltledger: transition of %s/%s: %w", s.RunID, s.Step, err)
	}
	s.Version, s.WriteID = version, rec.WriteID
	return s, nil
}
