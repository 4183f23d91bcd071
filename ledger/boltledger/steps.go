package boltledger

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// GetSteps returns the named steps of a run, in the order asked.
func (l *Ledger) GetSteps(ctx context.Context, runID string, steps ...string) ([]pipeline.StepRun, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltledger: get steps of %s: %w", runID, err)
	}
	out := make([]pipeline.StepRun, len(steps))
	err := l.db.View(func(tx *bbolt.Tx) error {
		if len(steps) == 0 && tx.Bucket(runsBucket).Get([]byte(runID)) == nil {
			return fmt.Errorf("run: %w", pipeline.ErrNotFound)
		}
		b := tx.Bucket(stepsBucket)
		for i, name := range steps {
			var err error
			if out[i], err = l.getStep(b, runID, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltledger: get steps of %s: %w", runID, err)
	}
	return out, nil
}

// getStep reads one step in a transaction (b is its steps bucket), decoded
// or from the decode cache.
func (l *Ledger) getStep(b *bbolt.Bucket, runID, name string) (pipeline.StepRun, error) {
	return l.readStep(b, runID, name, false)
}

// readStep is getStep; shared, it may hand out the decode cache's record
// (decoded.stepRead): for a read that only looks.
func (l *Ledger) readStep(b *bbolt.Bucket, runID, name string, shared bool) (pipeline.StepRun, error) {
	key := stepKey(runID, name)
	v := b.Get(key)
	if v == nil {
		return pipeline.StepRun{}, fmt.Errorf("step %s: %w", name, pipeline.ErrNotFound)
	}
	rec, version, err := l.decoded.stepRead(key, v, shared)
	if err != nil {
		return pipeline.StepRun{}, fmt.Errorf("step %s: %w", name, err)
	}
	return rec.step(runID, name, version), nil
}

// UpdateStep writes s if s.Version matches the stored version. Only the step's
// own record is read and written, so writes to different steps never conflict.
func (l *Ledger) UpdateStep(ctx context.Context, s pipeline.StepRun) (pipeline.StepRun, error) {
	if err := ctx.Err(); err != nil {
		return pipeline.StepRun{}, fmt.Errorf("boltledger: update step %s/%s: %w", s.RunID, s.Step, err)
	}
	// Encoded before the transaction; the version is filled in inside it.
	rec := newStepRecord(s)
	val, err := encodeStep(0, &rec)
	if err != nil {
		return pipeline.StepRun{}, fmt.Errorf("boltledger: update step %s/%s: %w", s.RunID, s.Step, err)
	}
	key := stepKey(s.RunID, s.Step)
	var (
		outcome error
		version int64
	)
	err = l.write(func(tx *bbolt.Tx) error {
		var err error
		outcome, version, err = casStep(tx, key, val, s.Version)
		return err
	})
	if err == nil {
		err = outcome
	}
	if err != nil {
		return pipeline.StepRun{}, fmt.Errorf("boltledger: update step %s/%s: %w", s.RunID, s.Step, err)
	}
	l.decoded.putStep(key, val, rec)
	s.Version, s.WriteID, s.History = version, rec.WriteID, rec.History
	return s, nil
}

// casStep writes the encoded step val at key if the stored version is want,
// with the next version, which it returns. A missing step or another version
// is the outcome (ErrNotFound, ErrConflict), not an error: it must not roll
// back a shared transaction. It may run again in a new transaction after a
// rollback (rewriting val's version prefix is then safe).
func casStep(tx *bbolt.Tx, key, val []byte, want int64) (outcome error, version int64, err error) {
	b := tx.Bucket(stepsBucket)
	cur := b.Get(key)
	if cur == nil {
		return pipeline.ErrNotFound, 0, nil
	}
	stored, err := versionOf(cur)
	if err != nil {
		return nil, 0, err
	}
	if stored != want {
		return fmt.Errorf("%w: version %d, stored %d", pipeline.ErrConflict, want, stored), 0, nil
	}
	version = stored + 1
	return nil, version, b.Put(key, withVersion(val, version))
}
