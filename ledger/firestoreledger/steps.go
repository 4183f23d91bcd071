package firestoreledger

import (
	"context"
	"fmt"

	"cloud.google.com/go/firestore"

	"github.com/pipelinehq/pipeline/pipeline"
)

// GetSteps reads exactly the named step documents in one BatchGetDocuments
// call: one document read per distinct step.
func (l *Ledger) GetSteps(ctx context.Context, runID string, steps ...string) ([]pipeline.StepRun, error) {
	if len(steps) == 0 {
		return []pipeline.StepRun{}, nil
	}
	index := make(map[string]int, len(steps)) // step -> position in refs
	refs := make([]*firestore.DocumentRef, 0, len(steps))
	for _, name := range steps {
		if _, ok := index[name]; ok {
			continue
		}
		ref, err := l.stepRef(runID, name)
		if err != nil {
			return nil, wrap(err, "get steps")
		}
		index[name] = len(refs)
		refs = append(refs, ref)
	}
	snaps, err := l.client.GetAll(ctx, refs)
	if err != nil {
		return nil, wrap(err, "get steps of %s", runID)
	}
	out := make([]pipeline.StepRun, len(steps))
	for i, name := range steps {
		snap := snaps[index[name]]
		if !snap.Exists() {
			return nil, fmt.Errorf("firestoreledger: get step %s of %s: %w", name, runID, pipeline.ErrNotFound)
		}
		s, err := stepFromSnap(snap)
		if err != nil {
			return nil, wrap(err, "get steps of %s", runID)
		}
		out[i] = s
	}
	return out, nil
}

// UpdateStep writes the step if s.Version is the stored document's update
// time: one preconditioned write, no read (a
// conflict costs one read to tell it from a missing record).
func (l *Ledger) UpdateStep(ctx context.Context, s pipeline.StepRun) (pipeline.StepRun, error) {
	ref, err := l.stepRef(s.RunID, s.Step)
	if err != nil {
		return pipeline.StepRun{}, wrap(err, "update step")
	}
	if s.Version <= 0 {
		return pipeline.StepRun{}, errNoVersion(ctx, ref, "update step %s of %s", s.Step, s.RunID)
	}
	s.WriteID = newWriteID()
	res, err := ref.Update(ctx, stepUpdates(s), firestore.LastUpdateTime(updateTime(s.Version)))
	if err != nil {
		snap, err := casError(ctx, ref, s.WriteID, err, "update step %s of %s", s.Step, s.RunID)
		if err != nil {
			return pipeline.StepRun{}, err
		}
		return storedStep(s, version(snap.UpdateTime)), nil
	}
	return storedStep(s, version(res.UpdateTime)), nil
}
