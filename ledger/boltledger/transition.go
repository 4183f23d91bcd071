package boltledger

import (
	"bytes"
	"context"
	"errors"
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
	_ pipeline.HandOff      = (*Store)(nil)
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
	stored, _, err := st.transition(ctx, s, tasks, handled, nil, nil)
	return stored, err
}

// TransitionHandOff writes what Transition writes and, in the same
// transaction, the claims that claim returns for the tasks' steps (each
// read in that transaction, written over the version read): one commit.
func (st *Store) TransitionHandOff(ctx context.Context, s pipeline.StepRun, tasks []pipeline.Task, handled pipeline.Task, claim pipeline.ClaimFunc) (pipeline.StepRun, []pipeline.StepRun, error) {
	return st.transition(ctx, s, tasks, handled, claim, nil)
}

// transition writes s, the claims (claim, if set), tasks and the handled
// task's deletion in one transaction, and runs also (if set) in it after s
// is written, with s as written: an error of also writes nothing at all.
func (st *Store) transition(ctx context.Context, s pipeline.StepRun, tasks []pipeline.Task, handled pipeline.Task, claim pipeline.ClaimFunc, also func(tx *bbolt.Tx, written pipeline.StepRun) error) (pipeline.StepRun, []pipeline.StepRun, error) {
	if err := ctx.Err(); err != nil {
		return pipeline.StepRun{}, nil, fmt.Errorf("boltledger: transition of %s/%s: %w", s.RunID, s.Step, err)
	}
	rec := newStepRecord(s)
	val, err := encodeStep(0, &rec)
	if err != nil {
		return pipeline.StepRun{}, nil, fmt.Errorf("boltledger: transition of %s/%s: %w", s.RunID, s.Step, err)
	}
	writeTasks, after, err := st.tasks.TransitionWrites(tasks, handled)
	if err != nil {
		return pipeline.StepRun{}, nil, fmt.Errorf("boltledger: transition of %s/%s: %w", s.RunID, s.Step, err)
	}
	key := stepKey(s.RunID, s.Step)
	var pre []preclaim
	if claim != nil {
		pre = st.preclaim(tasks, claim)
	}
	var (
		outcome error
		version int64
		claimed []pipeline.StepRun
		// claimWrites are the claims' records, for the decode cache.
		claimWrites []stepWrite
	)
	err = st.write(func(tx *bbolt.Tx) error {
		var err error
		claimed, claimWrites = claimed[:0], claimWrites[:0]
		outcome, version, err = casStep(tx, key, val, s.Version)
		if err != nil || outcome != nil {
			return err // a lost compare-and-swap writes nothing, tasks included
		}
		if claim != nil {
			if claimed, claimWrites, err = st.claimSteps(tx, tasks, claim, pre, claimed, claimWrites); err != nil {
				return err
			}
		}
		if also != nil {
			written := s
			written.Version, written.WriteID, written.History = version, rec.WriteID, rec.History
			if err := also(tx, written); err != nil {
				return err
			}
		}
		return writeTasks(tx)
	})
	after(err == nil && outcome == nil)
	if err == nil {
		err = outcome
	}
	if err != nil {
		return pipeline.StepRun{}, nil, fmt.Errorf("boltledger: transition of %s/%s: %w", s.RunID, s.Step, err)
	}
	st.decoded.putStep(key, val, rec)
	for _, w := range claimWrites {
		st.decoded.putStep(w.key, w.val, w.rec)
	}
	s.Version, s.WriteID, s.History = version, rec.WriteID, rec.History
	return s, claimed, nil
}

// stepWrite is a step record written: its key, stored value and record.
type stepWrite struct {
	key, val []byte
	rec      stepRecord
}

// preclaim is the claim of a task's step decided before the transaction,
// on the record stored then (cur, a copy): the transaction writes it only if
// the stored record is still byte for byte cur, when deciding again would
// give the same claim. Decoding, deciding and encoding then happen outside
// the single writer of the shared commit.
type preclaim struct {
	cur   []byte // the stored value the claim was decided on; nil: none decided
	ok    bool   // claim accepted it
	claim pipeline.StepRun
	rec   stepRecord
	val   []byte // rec encoded, its version filled in when written
}

// preclaim decides the claims of the steps of tasks on the records stored
// now, one per task (a zero preclaim where nothing could be decided: the
// transaction decides). claim must be a pure function of its argument.
func (l *Ledger) preclaim(tasks []pipeline.Task, claim pipeline.ClaimFunc) []preclaim {
	pre := make([]preclaim, len(tasks))
	_ = l.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(stepsBucket)
		for i, t := range tasks {
			key := stepKey(t.Payload.RunID, t.Payload.Step)
			v := b.Get(key)
			if v == nil {
				continue
			}
			rec, version, err := l.decoded.step(key, v)
			if err != nil {
				continue // the transaction reports it
			}
			cur := rec.step(t.Payload.RunID, t.Payload.Step, version)
			p := preclaim{cur: bytes.Clone(v)}
			if p.claim, p.ok = claim(cur); p.ok {
				p.claim.RunID, p.claim.Step = cur.RunID, cur.Step
				p.rec = newStepRecord(p.claim)
				if p.val, err = encodeStep(0, &p.rec); err != nil {
					continue // the transaction reports it
				}
			}
			pre[i] = p
		}
		return nil
	})
	return pre
}

// claimSteps writes, in tx, the claim records claim returns for the steps
// of tasks (as stored in tx), appending them to out with their versions,
// and what it wrote to writes. A task whose step is missing, or that claim
// declines, writes nothing. pre holds claims decided before tx (preclaim;
// nil or shorter: none): one whose record is unchanged is written as
// decided.
func (l *Ledger) claimSteps(tx *bbolt.Tx, tasks []pipeline.Task, claim pipeline.ClaimFunc, pre []preclaim, out []pipeline.StepRun, writes []stepWrite) ([]pipeline.StepRun, []stepWrite, error) {
	b := tx.Bucket(stepsBucket)
	for i, t := range tasks {
		if i < len(pre) && pre[i].cur != nil {
			key := stepKey(t.Payload.RunID, t.Payload.Step)
			if v := b.Get(key); v != nil && bytes.Equal(v, pre[i].cur) {
				p := pre[i]
				if !p.ok {
					continue
				}
				stored, err := versionOf(v)
				if err != nil {
					return out, writes, fmt.Errorf("claim %s: %w", t.Payload.Step, err)
				}
				version := stored + 1
				if err := b.Put(key, withVersion(p.val, version)); err != nil {
					return out, writes, err
				}
				c := p.claim
				c.Version, c.WriteID, c.History = version, p.rec.WriteID, p.rec.History
				out = append(out, c)
				writes = append(writes, stepWrite{key: key, val: p.val, rec: p.rec})
				continue
			}
		}
		cur, err := l.getStep(b, t.Payload.RunID, t.Payload.Step)
		if errors.Is(err, pipeline.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, writes, err
		}
		c, ok := claim(cur)
		if !ok {
			continue
		}
		c.RunID, c.Step = cur.RunID, cur.Step
		rec := newStepRecord(c)
		val, err := encodeStep(0, &rec)
		if err != nil {
			return out, writes, fmt.Errorf("claim %s: %w", cur.Step, err)
		}
		key := stepKey(cur.RunID, cur.Step)
		outcome, version, err := casStep(tx, key, val, cur.Version)
		if err != nil {
			return out, writes, err
		}
		if outcome != nil {
			return out, writes, fmt.Errorf("claim %s: %w", cur.Step, outcome) // read in this transaction: cannot happen
		}
		c.Version, c.WriteID, c.History = version, rec.WriteID, rec.History
		out = append(out, c)
		writes = append(writes, stepWrite{key: key, val: val, rec: rec})
	}
	return out, writes, nil
}
