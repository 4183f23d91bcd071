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

// casError maps the error of a write preconditioned on ref's update time.
// Firestore answers FailedPrecondition both when the document's update time
// differs and when the document is missing, so only on that (off the happy
// path) one read tells pipeline.ErrNotFound from pipeline.ErrConflict. Only
// writes get this mapping: queries also answer FailedPrecondition when an
// index is missing.
func casError(ctx context.Context, ref *firestore.DocumentRef, err error, format string, args ...any) error {
	if status.Code(err) != codes.FailedPrecondition {
		return wrap(err, format, args...)
	}
	what := fmt.Sprintf(format, args...)
	if _, gerr := ref.Get(ctx); status.Code(gerr) == codes.NotFound {
		return fmt.Errorf("firestoreledger: %s: %w", what, pipeline.ErrNotFound)
	}
	return fmt.Errorf("firestoreledger: %s: %w (%w)", what, pipeline.ErrConflict, err)
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
