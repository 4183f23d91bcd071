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
// all or nothing.
func (st *Store) TransitionFinish(ctx context.Context, s pipeline.StepRun, handled pipeline.Task, finish pipeline.FinishFunc) (pipeline.StepRun, pipeline.Run, bool, error) {
	fail := func(err error) (pipeline.StepRun, pipeline.Run, bool, error) {
		return pipeline.StepRun{}, pipeline.Run{}, false, fmt.Errorf("boltledger: transition of %s/%s: %w", s.RunID, s.Step, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	rec := newStepRecord(s)
	val, err := encodeStep(0, &rec)
	if err != nil {
		return fail(err)
	}
	writeTasks, after, err := st.tasks.TransitionWrites(nil, handled)
	if err != nil {
		return fail(err)
	}
	key := stepKey(s.RunID, s.Step)
	var (
		outcome error
		version int64
		run     pipeline.Run
		wrote   bool
		w       runWrite
	)
	err = st.write(func(tx *bbolt.Tx) error {
		var err error
		run, wrote, w = pipeline.Run{}, false, runWrite{}
		outcome, version, err = casStep(tx, key, val, s.Version)
		if err != nil || outcome != nil {
			return err // a lost compare-and-swap writes nothing
		}
		written := s
		written.Version, written.WriteID, written.History = version, rec.WriteID, rec.History
		if run, outcome, err = st.runWithStepTx(tx, written); err != nil || outcome != nil {
			if outcome != nil {
				// Nothing may stay written: the step's write is undone
				// with the transaction.
				return fmt.Errorf("run %s: %w", s.RunID, outcome)
			}
			return err
		}
		if end, ok := finish(run); ok {
			steps := end.Steps
			end.Steps = nil
			if w, outcome, err = st.updateRunTx(tx, end); err != nil {
				return err
			}
			if outcome != nil {
				return fmt.Errorf("run %s: %w", s.RunID, outcome) // read in this transaction: cannot happen
			}
			run, wrote = w.run, true
			run.Steps = steps
		}
		return writeTasks(tx)
	})
	after(err == nil && outcome == nil)
	if err == nil {
		err = outcome
	}
	if err != nil {
		return fail(err)
	}
	st.decoded.putStep(key, val, rec)
	if wrote {
		st.wroteRun(w)
	}
	s.Version, s.WriteID, s.History = version, rec.WriteID, rec.History
	return s, run, wrote, nil
}

// runWithStepTx reads s's run in tx with all of its steps, s (just written
// in tx) as given. outcome is ErrNotFound for a missing run; err a failed
// read.
func (st *Store) runWithStepTx(tx *bbolt.Tx, s pipeline.StepRun) (r pipeline.Run, outcome, err error) {
	v := tx.Bucket(runsBucket).Get([]byte(s.RunID))
	if v == nil {
		return pipeline.Run{}, pipeline.ErrNotFound, nil
	}
	rec, graph, version, err := st.decoded.run(s.RunID, v)
	if err != nil {
		return pipeline.Run{}, nil, err
	}
	r = rec.runWith(s.RunID, version, graph)
	r.Steps = make([]pipeline.StepRun, len(rec.Steps))
	stepsB := tx.Bucket(stepsBucket)
	for i, name := range rec.Steps {
		if name == s.Step {
			r.Steps[i] = s
			continue
		}
		if r.Steps[i], err = st.getStep(stepsB, s.RunID, name); err != nil {
			return pipeline.Run{}, nil, err
		}
	}
	return r, nil, nil
}
