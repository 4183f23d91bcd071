package firestoreledger

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipelinehq/pipeline/pipeline"
)

// wrap gives err its operation context and maps Firestore's NotFound to
// pipeline.ErrNotFound.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	if status.Code(err) == codes.NotFound && !errors.Is(err, pipeline.ErrNotFound) {
		return fmt.Errorf("firestoreledger: %s: %w (%w)", what, pipeline.ErrNotFound, err)
	}
	return fmt.Errorf("firestoreledger: %s: %w", what, err)
}

// casError maps the error of a write preconditioned on ref's update time,
// whose write id was writeID. Firestore answers FailedPrecondition both when
// the document's update time differs and when the document is missing, so
// only on that (off the happy path) one read tells pipeline.ErrNotFound from
// pipeline.ErrConflict. The same read recognises a lost reply: the client
// retries a Commit whose reply was lost (Unavailable), and the retry fails
// its precondition because the first commit landed; if the stored document
// carries this call's write id, the write succeeded, and the snapshot read
// is returned with a nil error. Only writes get this mapping: queries also
// answer FailedPrecondition when an index is missing.
func casError(ctx context.Context, ref *firestore.DocumentRef, writeID string, err error, format string, args ...any) (*firestore.DocumentSnapshot, error) {
	what := fmt.Sprintf(format, args...)
	switch status.Code(err) {
	case codes.FailedPrecondition, codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.Unknown, codes.Internal:
	default:
		return nil, wrap(err, format, args...)
	}
	snap, gerr := ref.Get(ctx)
	switch {
	case status.Code(gerr) == codes.NotFound && status.Code(err) == codes.FailedPrecondition:
		return nil, fmt.Errorf("firestoreledger: %s: %w", what, pipeline.ErrNotFound)
	case gerr == nil && writeID != "":
		if id, _ := snap.DataAt(fWriteID); id == writeID {
			return snap, nil // our own write; its reply was lost
		}
	}
	switch status.Code(err) {
	case codes.FailedPrecondition, codes.Aborted:
		// Aborted: the write lost a lock to a concurrent writer of the
		// same document (the emulator's "transaction lock timeout"): for a
		// compare-and-swap, that is a conflict too.
		return nil, fmt.Errorf("firestoreledger: %s: %w (%w)", what, pipeline.ErrConflict, err)
	}
	return nil, wrap(err, format, args...)
}

// errNoVersion is what a write with no Version (a record never read) gets:
// nothing is written, because the emulator takes an update-time precondition
// of the Unix epoch to mean "missing" and would create the document. One read
// tells pipeline.ErrNotFound from pipeline.ErrConflict.
func errNoVersion(ctx context.Context, ref *firestore.DocumentRef, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	_, err := ref.Get(ctx)
	switch status.Code(err) {
	case codes.NotFound:
		return fmt.Errorf("firestoreledger: %s: %w", what, pipeline.ErrNotFound)
	case codes.OK:
		return fmt.Errorf("firestoreledger: %s: %w: no version given", what, pipeline.ErrConflict)
	}
	return wrap(err, "%s", what)
}
