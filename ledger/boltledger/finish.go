package boltledger

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

var _ pipeline.Finisher = (*Store)(nil)

// TransitionFinish writes s (compare-and-swap on its version), deletes the
// handled task and writes the run's end that finish decides on the run as
// read in the same transaction (with its steps, s as written): one commit,
// all or nothing. finish only looks at the steps it is given (they may be
// the decode cache's, not copied in the single writer of the shared
// commit); the run returned is the caller's own.
func (st *Store) TransitionFinish(ctx context.Context, s pipeline.StepRun, handled pipeline.Task, finish pipeline.FinishFunc) (pipeline.StepRun, pipeline.Run, bool, error) {
	var (
		run   pipeline.Run
		wrote bool
		w     runWrite
	)
	stored, _, err := st.transition(ctx, s, nil, handled, nil, func(tx *bbolt.Tx, written pipeline.StepRun) error {
		var err error
		wrote, w = false, runWrite{}
		if run, err = st.runTx(tx, s.RunID, &written, true); err != nil {
			return err // the step's write is undone with the transaction
		}
		end, ok := finish(run)
		if !ok {
			return nil
		}
		steps := end.Steps
		end.Steps = nil
		var outcome error
		if w, outcome, err = st.updateRunTx(tx, end); err != nil {
			return err
		}
		if outcome != nil {
			return fmt.Errorf("run %s: %w", s.RunID, outcome) // read in this transaction: cannot happen
		}
		run, wrote = w.run, true
		run.Steps = steps
		return nil
	})
	if err != nil {
		return pipeline.StepRun{}, pipeline.Run{}, false, err
	}
	ownSteps(run.Steps) // after the commit, outside its single writer
	if wrote {
		st.wroteRun(w)
	}
	return stored, run, wrote, nil
}
