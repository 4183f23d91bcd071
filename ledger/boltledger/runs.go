package boltledger

import (
	"bytes"
	"cmp"
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/pipeline"
)

// defaultLimit is ListRuns' limit when the filter gives none.
const defaultLimit = 100

// CreateRun writes r and its steps in one transaction, each with version 1,
// unless a run with r.ID exists: then it returns that run (without steps) and
// created=false. The returned run never carries steps.
func (l *Ledger) CreateRun(ctx context.Context, r pipeline.Run, steps []pipeline.StepRun) (pipeline.Run, bool, error) {
	c, err := l.prepareCreate(ctx, r, steps)
	if err != nil {
		return pipeline.Run{}, false, err
	}
	err = l.write(c.write)
	return c.result(err)
}

// creation is a run's creation, encoded before its transaction (which holds
// the write lock): write runs in it (maybe more than once), result tells
// what it did.
type creation struct {
	l        *Ledger
	r        pipeline.Run
	id       []byte
	names    []string
	stepVals [][]byte
	stepRecs []stepRecord
	runRec   runRecord
	runVal   []byte
	// Set by write: the run found stored instead.
	existing pipeline.Run
	exists   bool
}

func (l *Ledger) prepareCreate(ctx context.Context, r pipeline.Run, steps []pipeline.StepRun) (*creation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltledger: create run %s: %w", r.ID, err)
	}
	if r.ID == "" {
		return nil, fmt.Errorf("boltledger: create run: %w: empty run ID", pipeline.ErrInvalid)
	}
	c := &creation{l: l, r: r, id: []byte(r.ID), names: make([]string, len(steps)),
		stepVals: make([][]byte, len(steps)), stepRecs: make([]stepRecord, len(steps))}
	seen := make(map[string]bool, len(steps))
	for i, s := range steps {
		switch {
		case s.Step == "":
			return nil, fmt.Errorf("boltledger: create run %s: %w: step %d has no name", r.ID, pipeline.ErrInvalid, i)
		case seen[s.Step]:
			return nil, fmt.Errorf("boltledger: create run %s: %w: step %s given twice", r.ID, pipeline.ErrInvalid, s.Step)
		case s.RunID != "" && s.RunID != r.ID:
			return nil, fmt.Errorf("boltledger: create run %s: %w: step %s belongs to run %s", r.ID, pipeline.ErrInvalid, s.Step, s.RunID)
		}
		seen[s.Step] = true
		c.names[i] = s.Step
		c.stepRecs[i] = newStepRecord(s)
		v, err := encodeStep(1, &c.stepRecs[i])
		if err != nil {
			return nil, fmt.Errorf("boltledger: create run %s: step %s: %w", r.ID, s.Step, err)
		}
		c.stepVals[i] = v
	}
	var err error
	if c.runRec, err = newRunRecord(r, c.names); err != nil {
		return nil, fmt.Errorf("boltledger: create run %s: %w", r.ID, err)
	}
	if c.runVal, err = encode(1, c.runRec); err != nil {
		return nil, fmt.Errorf("boltledger: create run %s: %w", r.ID, err)
	}
	return c, nil
}

// write creates the run in tx, or finds it stored (c.exists) and writes
// nothing.
func (c *creation) write(tx *bbolt.Tx) error {
	r := c.r
	c.existing, c.exists = pipeline.Run{}, false
	runs := tx.Bucket(runsBucket)
	if cur := runs.Get(c.id); cur != nil {
		rec, graph, version, err := c.l.decoded.run(r.ID, cur)
		if err != nil {
			return fmt.Errorf("run %s: %w", r.ID, err)
		}
		c.existing, c.exists = rec.runWith(r.ID, version, graph), true
		return nil
	}
	if err := runs.Put(c.id, c.runVal); err != nil {
		return err
	}
	stepsB := tx.Bucket(stepsBucket)
	for i, name := range c.names {
		if err := stepsB.Put(stepKey(r.ID, name), c.stepVals[i]); err != nil {
			return err
		}
	}
	if err := tx.Bucket(byTimeBucket).Put(timeIndexKey(r.CreatedAt, r.ID), nil); err != nil {
		return err
	}
	if r.Notify == pipeline.NotifyPending {
		if err := tx.Bucket(notifyBucket).Put(timeIndexKey(r.FinishedAt, r.ID), nil); err != nil {
			return err
		}
	}
	return tx.Bucket(byPipelineBkt).Put(pipelineIndexKey(r.Pipeline, r.CreatedAt, r.ID), nil)
}

// result is CreateRun's answer once the transaction ended with err.
func (c *creation) result(err error) (pipeline.Run, bool, error) {
	r := c.r
	if err != nil {
		return pipeline.Run{}, false, fmt.Errorf("boltledger: create run %s: %w", r.ID, err)
	}
	if c.exists {
		return c.existing, false, nil
	}
	for i, name := range c.names {
		c.l.decoded.putStep(stepKey(r.ID, name), c.stepVals[i], c.stepRecs[i])
	}
	r.Version, r.Steps, r.WriteID = 1, nil, c.runRec.WriteID
	return r, true, nil
}

// GetRun returns the run with its steps in creation order.
func (l *Ledger) GetRun(ctx context.Context, runID string) (pipeline.Run, error) {
	if err := ctx.Err(); err != nil {
		return pipeline.Run{}, fmt.Errorf("boltledger: get run %s: %w", runID, err)
	}
	var r pipeline.Run
	err := l.db.View(func(tx *bbolt.Tx) error {
		var err error
		r, err = l.runTx(tx, runID, nil, false)
		return err
	})
	if err != nil {
		return pipeline.Run{}, fmt.Errorf("boltledger: get run %s: %w", runID, err)
	}
	return r, nil
}

// runTx reads run runID in tx with all of its steps; written, if set, is
// one of them as just written in tx, taken as given. Shared, the steps may
// hold the decode cache's records (readStep): the caller only looks at them
// until it makes them its own (ownSteps).
func (l *Ledger) runTx(tx *bbolt.Tx, runID string, written *pipeline.StepRun, shared bool) (pipeline.Run, error) {
	v := tx.Bucket(runsBucket).Get([]byte(runID))
	if v == nil {
		return pipeline.Run{}, pipeline.ErrNotFound
	}
	rec, graph, version, err := l.decoded.run(runID, v)
	if err != nil {
		return pipeline.Run{}, err
	}
	r := rec.runWith(runID, version, graph)
	r.Steps = make([]pipeline.StepRun, len(rec.Steps))
	stepsB := tx.Bucket(stepsBucket)
	for i, name := range rec.Steps {
		if written != nil && name == written.Step {
			r.Steps[i] = *written
			continue
		}
		if r.Steps[i], err = l.readStep(stepsB, runID, name, shared); err != nil {
			return pipeline.Run{}, err
		}
	}
	return r, nil
}

// UpdateRun writes r's own fields (not its steps, nor their order) if
// r.Version matches the stored version.
func (l *Ledger) UpdateRun(ctx context.Context, r pipeline.Run) (pipeline.Run, error) {
	if err := ctx.Err(); err != nil {
		return pipeline.Run{}, fmt.Errorf("boltledger: update run %s: %w", r.ID, err)
	}
	var (
		outcome error
		w       runWrite
	)
	err := l.write(func(tx *bbolt.Tx) error {
		var err error
		w, outcome, err = l.updateRunTx(tx, r)
		return err
	})
	if err == nil {
		err = outcome
	}
	if err != nil {
		return pipeline.Run{}, fmt.Errorf("boltledger: update run %s: %w", r.ID, err)
	}
	l.wroteRun(w)
	return w.run, nil
}

// runWrite is what updateRunTx wrote: the run as the domain's (with its new
// Version, its definition as stored) and, for the decode cache, the stored
// value, its record and the stored graph (decoded; nil if it does not).
type runWrite struct {
	run         pipeline.Run
	val         []byte
	rec         runRecord
	storedGraph *pipeline.Graph
}

// updateRunTx writes r's own fields in tx as UpdateRun does. outcome is the
// caller's answer (ErrNotFound, ErrConflict, an invalid run; nothing was
// written); err fails the transaction.
func (l *Ledger) updateRunTx(tx *bbolt.Tx, r pipeline.Run) (w runWrite, outcome, err error) {
	id := []byte(r.ID)
	runs := tx.Bucket(runsBucket)
	cur := runs.Get(id)
	if cur == nil {
		return w, pipeline.ErrNotFound, nil
	}
	old, graph, stored, err := l.decoded.run(r.ID, cur)
	w.storedGraph = graph
	if err != nil {
		// A graph that does not decode does not stop an update, which
		// keeps it as stored.
		graph, w.storedGraph = r.Graph, nil
		if stored, err = decode(cur, &old); err != nil {
			return w, nil, fmt.Errorf("run %s: %w", r.ID, err)
		}
	}
	if stored != r.Version {
		return w, fmt.Errorf("%w: version %d, stored %d", pipeline.ErrConflict, r.Version, stored), nil
	}
	version := stored + 1
	// The run's definition is CreateRun's: updates keep it (and so never
	// encode the graph they were given).
	given := r
	given.Graph = nil
	rec, err := newRunRecord(given, old.Steps)
	if err != nil {
		return w, err, nil
	}
	rec.DefVersion, rec.Graph = old.DefVersion, old.Graph
	r.DefinitionVersion, r.Graph = old.DefVersion, graph
	v, err := encode(version, rec)
	if err != nil {
		return w, err, nil
	}
	if err := runs.Put(id, v); err != nil {
		return w, nil, err
	}
	if err := reindexNotify(tx, r.ID, old, r); err != nil {
		return w, nil, err
	}
	if !old.CreatedAt.Equal(r.CreatedAt) || old.Pipeline != r.Pipeline {
		if err := reindex(tx, r.ID, old, r); err != nil {
			return w, nil, err
		}
	}
	r.Version, r.WriteID = version, rec.WriteID
	w.run, w.val, w.rec = r, v, rec
	return w, nil, nil
}

// wroteRun keeps a committed run write in the decode cache.
func (l *Ledger) wroteRun(w runWrite) {
	if w.storedGraph != nil || len(w.rec.Graph) == 0 {
		l.decoded.putRun(w.run.ID, w.val, w.rec, w.storedGraph)
	}
}

// reindex moves a run's index entries when its creation time or pipeline
// changed.
func reindex(tx *bbolt.Tx, runID string, old runRecord, r pipeline.Run) error {
	byTime, byPipe := tx.Bucket(byTimeBucket), tx.Bucket(byPipelineBkt)
	if err := byTime.Delete(timeIndexKey(old.CreatedAt, runID)); err != nil {
		return err
	}
	if err := byPipe.Delete(pipelineIndexKey(old.Pipeline, old.CreatedAt, runID)); err != nil {
		return err
	}
	if err := byTime.Put(timeIndexKey(r.CreatedAt, runID), nil); err != nil {
		return err
	}
	return byPipe.Put(pipelineIndexKey(r.Pipeline, r.CreatedAt, runID), nil)
}

// reindexNotify keeps a run's entry in the index of owed notifications.
func reindexNotify(tx *bbolt.Tx, runID string, old runRecord, r pipeline.Run) error {
	was, is := old.Notify == string(pipeline.NotifyPending), r.Notify == pipeline.NotifyPending
	if was == is && (!is || old.FinishedAt.Equal(r.FinishedAt)) {
		return nil
	}
	idx := tx.Bucket(notifyBucket)
	if was {
		if err := idx.Delete(timeIndexKey(old.FinishedAt, runID)); err != nil {
			return err
		}
	}
	if is {
		return idx.Put(timeIndexKey(r.FinishedAt, runID), nil)
	}
	return nil
}

// ListRuns returns the runs matching f in f's order, without steps. It walks
// an index from the cursor (or the newest/oldest run) towards the end of the
// time range: the pipeline index (with a pipeline), the index of owed
// notifications (NotifyPending), or the creation-time index. Its cost is the
// runs it skips for the status filter plus the runs it returns.
func (l *Ledger) ListRuns(ctx context.Context, f pipeline.RunFilter) ([]pipeline.Run, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltledger: list runs: %w", err)
	}
	if f.NotifyPending && (f.Pipeline != "" || f.Status != "") {
		return nil, fmt.Errorf("boltledger: list runs: %w: NotifyPending cannot be combined with a pipeline or status", pipeline.ErrInvalid)
	}
	limit := cmp.Or(max(f.Limit, 0), defaultLimit)
	index, prefix := byTimeBucket, []byte(nil)
	switch {
	case f.NotifyPending:
		index = notifyBucket
	case f.Pipeline != "":
		index, prefix = byPipelineBkt, pipelinePrefix(f.Pipeline)
	}
	var since, before []byte
	if !f.Since.IsZero() {
		since = appendTimeKey(nil, f.Since)
	}
	if !f.Before.IsZero() {
		before = appendTimeKey(nil, f.Before)
	}
	var out []pipeline.Run
	err := l.db.View(func(tx *bbolt.Tx) error {
		runs := tx.Bucket(runsBucket)
		c := tx.Bucket(index).Cursor()
		k, step := startKey(c, prefix, f)
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = step() {
			rest := k[len(prefix):]
			if len(rest) < timeKeyLen {
				return fmt.Errorf("corrupt index key %q", k)
			}
			at := rest[:timeKeyLen]
			if f.OldestFirst {
				if before != nil && bytes.Compare(at, before) >= 0 {
					break
				}
				if since != nil && bytes.Compare(at, since) < 0 {
					continue
				}
			} else {
				if since != nil && bytes.Compare(at, since) < 0 {
					break
				}
				if before != nil && bytes.Compare(at, before) >= 0 {
					continue // newer than the range asked for
				}
			}
			runID := string(rest[timeKeyLen:])
			v := runs.Get(rest[timeKeyLen:])
			if v == nil {
				return fmt.Errorf("index names missing run %s", runID)
			}
			var rec runRecord
			version, err := decode(v, &rec)
			if err != nil {
				return fmt.Errorf("run %s: %w", runID, err)
			}
			if f.Status != "" && rec.Status != string(f.Status) {
				continue
			}
			// The runs of one definition share its graph: decoded once
			// (the graph cache), not once per run listed.
			graph, err := l.decoded.graph(rec)
			if err != nil {
				return fmt.Errorf("run %s: %w", runID, err)
			}
			out = append(out, rec.runWith(runID, version, graph))
			if len(out) == limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltledger: list runs: %w", err)
	}
	return out, nil
}

// startKey positions c on the first key of f's listing within prefix and
// returns it with the function that steps in the listing's direction.
func startKey(c *bbolt.Cursor, prefix []byte, f pipeline.RunFilter) ([]byte, func() ([]byte, []byte)) {
	if f.OldestFirst {
		if f.Cursor == nil {
			k, _ := c.Seek(prefix)
			return k, c.Next
		}
		at := append(bytes.Clone(prefix), timeIndexKey(f.Cursor.At, f.Cursor.RunID)...)
		k, _ := c.Seek(at)
		if bytes.Equal(k, at) {
			k, _ = c.Next()
		}
		return k, c.Next
	}
	if f.Cursor == nil {
		k, _ := seekLast(c, prefix)
		return k, c.Prev
	}
	at := append(bytes.Clone(prefix), timeIndexKey(f.Cursor.At, f.Cursor.RunID)...)
	k, _ := c.Seek(at)
	if k == nil { // every key is before the cursor
		k, _ = c.Last()
		return k, c.Prev
	}
	k, _ = c.Prev() // the last key before the cursor
	return k, c.Prev
}

// seekLast positions c on the last key starting with prefix (or, when no key
// does, on a key that does not, or nil).
func seekLast(c *bbolt.Cursor, prefix []byte) ([]byte, []byte) {
	end := prefixEnd(prefix)
	if end == nil {
		return c.Last()
	}
	if k, _ := c.Seek(end); k == nil {
		return c.Last()
	}
	return c.Prev()
}

// prefixEnd is the smallest key greater than every key starting with prefix,
// or nil if there is none (prefix is empty or all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
