package firestoreledger

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipelinehq/pipeline/pipeline"
)

// maxBatch is Firestore's limit of writes per commit.
const maxBatch = 500

// CreateRun writes the run document and one document per step in one atomic
// commit of creates (exists:false preconditions), so it writes everything or
// nothing. If the run exists it reads and returns the stored run with
// created=false.
func (l *Ledger) CreateRun(ctx context.Context, r pipeline.Run, steps []pipeline.StepRun) (pipeline.Run, bool, error) {
	runRef, err := l.runRef(r.ID)
	if err != nil {
		return pipeline.Run{}, false, wrap(err, "create run")
	}
	if len(steps)+1 > maxBatch {
		return pipeline.Run{}, false, fmt.Errorf("firestoreledger: create run %s: %w: %d steps, at most %d", r.ID, pipeline.ErrInvalid, len(steps), maxBatch-1)
	}
	// WriteBatch is deprecated in favour of transactions, but a transaction
	// costs an extra round trip (BeginTransaction) for the same atomic commit
	// of blind writes; the batch is one Commit RPC.
	batch := l.client.Batch() //nolint:staticcheck // see above
	r.WriteID = newWriteID()
	doc, err := toRunDoc(r)
	if err != nil {
		return pipeline.Run{}, false, fmt.Errorf("firestoreledger: create run %s: %w", r.ID, err)
	}
	batch.Create(runRef, doc)
	seen := make(map[string]bool, len(steps))
	for i, s := range steps {
		if s.RunID != r.ID {
			return pipeline.Run{}, false, fmt.Errorf("firestoreledger: create run %s: %w: step %q has run id %q", r.ID, pipeline.ErrInvalid, s.Step, s.RunID)
		}
		if seen[s.Step] {
			return pipeline.Run{}, false, fmt.Errorf("firestoreledger: create run %s: %w: step %q twice", r.ID, pipeline.ErrInvalid, s.Step)
		}
		seen[s.Step] = true
		ref, err := l.stepRef(r.ID, s.Step)
		if err != nil {
			return pipeline.Run{}, false, wrap(err, "create run %s", r.ID)
		}
		s.WriteID = r.WriteID
		batch.Create(ref, toStepDoc(s, i))
	}
	res, err := batch.Commit(ctx)
	if status.Code(err) == codes.AlreadyExists {
		snap, err := runRef.Get(ctx)
		if err != nil {
			return pipeline.Run{}, false, wrap(err, "create run %s: read existing", r.ID)
		}
		stored, err := runFromSnap(snap)
		// The client retried a commit whose reply was lost: the run
		// found is this call's own write.
		return stored, err == nil && stored.WriteID == r.WriteID, wrap(err, "create run %s", r.ID)
	}
	if err != nil {
		return pipeline.Run{}, false, wrap(err, "create run %s", r.ID)
	}
	return storedRun(r, version(res[0].UpdateTime)), true, nil
}

// GetRun reads the run document and its steps, in CreateRun's order.
func (l *Ledger) GetRun(ctx context.Context, runID string) (pipeline.Run, error) {
	ref, err := l.runRef(runID)
	if err != nil {
		return pipeline.Run{}, wrap(err, "get run")
	}
	var (
		run   pipeline.Run
		steps []pipeline.StepRun
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		snap, err := ref.Get(gctx)
		if err != nil {
			return err
		}
		run, err = runFromSnap(snap)
		return err
	})
	g.Go(func() error {
		snaps, err := ref.Collection(stepsCollection).OrderBy(fSeq, firestore.Asc).Documents(gctx).GetAll()
		if err != nil {
			return err
		}
		steps = make([]pipeline.StepRun, 0, len(snaps))
		for _, snap := range snaps {
			s, err := stepFromSnap(snap)
			if err != nil {
				return err
			}
			steps = append(steps, s)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return pipeline.Run{}, wrap(err, "get run %s", runID)
	}
	run.Steps = steps
	return run, nil
}

// UpdateRun writes the run's own fields if r.Version is the stored document's
// update time: one preconditioned write, no read (a
// conflict costs one read to tell it from a missing record).
func (l *Ledger) UpdateRun(ctx context.Context, r pipeline.Run) (pipeline.Run, error) {
	ref, err := l.runRef(r.ID)
	if err != nil {
		return pipeline.Run{}, wrap(err, "update run")
	}
	if r.Version <= 0 {
		return pipeline.Run{}, errNoVersion(ctx, ref, "update run %s", r.ID)
	}
	r.WriteID = newWriteID()
	res, err := ref.Update(ctx, runUpdates(r), firestore.LastUpdateTime(updateTime(r.Version)))
	if err != nil {
		snap, err := casError(ctx, ref, r.WriteID, err, "update run %s", r.ID)
		if err != nil {
			return pipeline.Run{}, err
		}
		return storedRun(r, version(snap.UpdateTime)), nil
	}
	return storedRun(r, version(res.UpdateTime)), nil
}

// ListRuns queries runs in f's order, bounded by f.Limit (100 if unset). It
// orders on the time field and then the document ID (the run ID), so that a
// cursor continues a listing exactly. NotifyPending queries notify ==
// "pending" ordered by finish time (composite index notify, finished_at).
func (l *Ledger) ListRuns(ctx context.Context, f pipeline.RunFilter) ([]pipeline.Run, error) {
	if f.NotifyPending && (f.Pipeline != "" || f.Status != "") {
		return nil, fmt.Errorf("firestoreledger: list runs: %w: NotifyPending cannot be combined with a pipeline or status", pipeline.ErrInvalid)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := l.runs.Query
	if f.Pipeline != "" {
		q = q.Where(fPipeline, "==", f.Pipeline)
	}
	if f.Status != "" {
		q = q.Where(fStatus, "==", string(f.Status))
	}
	field := fCreatedAt
	if f.NotifyPending {
		q = q.Where(fNotify, "==", string(pipeline.NotifyPending))
		field = fFinishedAt
	}
	if !f.Since.IsZero() {
		q = q.Where(field, ">=", f.Since)
	}
	if !f.Before.IsZero() {
		q = q.Where(field, "<", f.Before)
	}
	dir := firestore.Desc
	if f.OldestFirst {
		dir = firestore.Asc
	}
	q = q.OrderBy(field, dir).OrderBy(firestore.DocumentID, dir)
	if f.Cursor != nil {
		if err := checkID("run id", f.Cursor.RunID); err != nil {
			return nil, wrap(err, "list runs: cursor")
		}
		q = q.StartAfter(f.Cursor.At.Truncate(time.Microsecond).UTC(), l.runs.Doc(f.Cursor.RunID))
	}
	snaps, err := q.Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, wrap(err, "list runs")
	}
	runs := make([]pipeline.Run, 0, len(snaps))
	for _, snap := range snaps {
		r, err := runFromSnap(snap)
		if err != nil {
			return nil, wrap(err, "list runs")
		}
		runs = append(runs, r)
	}
	return runs, nil
}
