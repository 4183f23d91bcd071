package boltledger

import (
	"context"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

var _ pipeline.Launcher = (*Store)(nil)

// CreateRunLaunched creates r and its steps as CreateRun does and, in the
// same transaction, enqueues tasks (the run's roots) in the queue sharing
// the file: one commit. A run that exists is returned as stored, and
// nothing is written, tasks included.
func (st *Store) CreateRunLaunched(ctx context.Context, r pipeline.Run, steps []pipeline.StepRun, tasks []pipeline.Task) (pipeline.Run, bool, error) {
	c, err := st.prepareCreate(ctx, r, steps)
	if err != nil {
		return pipeline.Run{}, false, err
	}
	writeTasks, after, err := st.tasks.TransitionWrites(tasks, pipeline.Task{})
	if err != nil {
		return c.result(err)
	}
	err = st.write(func(tx *bbolt.Tx) error {
		if err := c.write(tx); err != nil || c.exists {
			return err
		}
		return writeTasks(tx)
	})
	after(err == nil && !c.exists)
	return c.result(err)
}
