package firestoreledger

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipelinehq/pipeline/pipeline"
)

// MarksCollection is the collection of pipeline marks beside the run
// collection: it shares the run collection's namespace.
func MarksCollection(runs string) string { return runs + "_marks" }

// markDoc is a mark document; its ID is the mark's ID.
type markDoc struct {
	Kind      string            `firestore:"kind"`
	Pipeline  string            `firestore:"pipeline"`
	Key       string            `firestore:"key"`
	Fields    map[string]string `firestore:"fields"`
	CreatedAt time.Time         `firestore:"created_at"`
	UpdatedAt *time.Time        `firestore:"updated_at"`
}

func toMarkDoc(m pipeline.Mark) markDoc {
	return markDoc{
		Kind: string(m.Kind), Pipeline: m.Pipeline, Key: m.Key, Fields: m.Fields,
		CreatedAt: m.CreatedAt.Truncate(time.Microsecond).UTC(), UpdatedAt: ts(m.UpdatedAt),
	}
}

func (d markDoc) mark(id string, version int64) pipeline.Mark {
	return pipeline.Mark{
		ID: id, Kind: pipeline.MarkKind(d.Kind), Pipeline: d.Pipeline, Key: d.Key, Fields: d.Fields,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: unts(d.UpdatedAt), Version: version,
	}
}

func (l *Ledger) markRef(id string) (*firestore.DocumentRef, error) {
	if err := checkID("mark id", id); err != nil {
		return nil, err
	}
	return l.marks.Doc(id), nil
}

func markFromSnap(snap *firestore.DocumentSnapshot) (pipeline.Mark, error) {
	var d markDoc
	if err := snap.DataTo(&d); err != nil {
		return pipeline.Mark{}, fmt.Errorf("decode mark %s: %w", snap.Ref.ID, err)
	}
	return d.mark(snap.Ref.ID, version(snap.UpdateTime)), nil
}

// CreateMark creates the mark document (exists:false precondition), or reads
// and returns the stored one with created=false.
func (l *Ledger) CreateMark(ctx context.Context, m pipeline.Mark) (pipeline.Mark, bool, error) {
	ref, err := l.markRef(m.ID)
	if err != nil {
		return pipeline.Mark{}, false, wrap(err, "create mark")
	}
	res, err := ref.Create(ctx, toMarkDoc(m))
	if status.Code(err) == codes.AlreadyExists {
		snap, err := ref.Get(ctx)
		if err != nil {
			return pipeline.Mark{}, false, wrap(err, "create mark %s: read existing", m.ID)
		}
		stored, err := markFromSnap(snap)
		return stored, false, wrap(err, "create mark %s", m.ID)
	}
	if err != nil {
		return pipeline.Mark{}, false, wrap(err, "create mark %s", m.ID)
	}
	return toMarkDoc(m).mark(m.ID, version(res.UpdateTime)), true, nil
}

// GetMark reads the mark document.
func (l *Ledger) GetMark(ctx context.Context, id string) (pipeline.Mark, error) {
	ref, err := l.markRef(id)
	if err != nil {
		return pipeline.Mark{}, wrap(err, "get mark")
	}
	snap, err := ref.Get(ctx)
	if err != nil {
		return pipeline.Mark{}, wrap(err, "get mark %s", id)
	}
	m, err := markFromSnap(snap)
	return m, wrap(err, "get mark %s", id)
}

// UpdateMark writes the mark's fields if m.Version is the document's update
// time: one preconditioned write.
func (l *Ledger) UpdateMark(ctx context.Context, m pipeline.Mark) (pipeline.Mark, error) {
	ref, err := l.markRef(m.ID)
	if err != nil {
		return pipeline.Mark{}, wrap(err, "update mark")
	}
	if m.Version <= 0 {
		return pipeline.Mark{}, errNoVersion(ctx, ref, "update mark %s", m.ID)
	}
	d := toMarkDoc(m)
	res, err := ref.Update(ctx, []firestore.Update{
		{Path: "fields", Value: d.Fields},
		{Path: "updated_at", Value: d.UpdatedAt},
	}, firestore.LastUpdateTime(updateTime(m.Version)))
	if err != nil {
		_, cerr := casError(ctx, ref, "", err, "update mark %s", m.ID)
		return pipeline.Mark{}, cerr
	}
	return d.mark(m.ID, version(res.UpdateTime)), nil
}
