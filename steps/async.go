package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// AsyncStep is implemented by a step kind whose work outlives a request (a
// remote batch job, a Cloud Run Job, a query): Start begins the work and
// answers at once, and the orchestrator calls Check later, in short
// requests, until the work is done. The step's timeout bounds the whole
// wait, not each request.
//
// Start is called once per attempt (the attempt's lease holds it), except
// after a crash between Start returning and the orchestrator recording its
// state: once the lease expires, the next delivery calls Start again for
// the same attempt (same Input.Attempt and Generation). Where the remote
// API takes a client-chosen ID, derive it from the input (AttemptKey) so
// that the repeated start adopts the work the lost one began; otherwise
// that crash window starts the work twice.
type AsyncStep interface {
	Step
	// Start begins the work. A Poll that is not Done makes the step wait:
	// its State is kept in the ledger and handed to Check after its After.
	Start(ctx context.Context, in Input) (Poll, error)
	// Check looks at the work started with state. Errors marked Permanent
	// fail the step; others are retried later (see RetryAfter) without
	// consuming the step's attempts.
	Check(ctx context.Context, in Input, state json.RawMessage) (Poll, error)
}

// AttemptKey names one attempt of one generation of a step in a run
// (RUN/STEP/gGENERATION/aATTEMPT): a deterministic ID for a remote API
// that takes a client-chosen one (a start repeated after a crash is then
// recognised remotely). Derive a kind's own ID from it (or from the same
// fields) where the remote API restricts the characters.
func AttemptKey(in Input) string {
	return fmt.Sprintf("%s/%s/g%d/a%d", in.RunID, in.Step, in.Generation, in.Attempt)
}

// Canceller is implemented by an AsyncStep that can stop its remote work: it
// is called when the step times out while waiting, when its run is
// cancelled and when an operator re-runs it. Best effort: an error is
// logged, never fatal.
type Canceller interface {
	Cancel(ctx context.Context, in Input, state json.RawMessage) error
}

// Poll is the answer of AsyncStep.Start and Check.
type Poll struct {
	// Done says the work finished successfully with Output.
	Done   bool
	Output json.RawMessage
	// State is what the next Check needs (JSON); a Check answering none
	// keeps the state it was given. After is when to check again (the
	// orchestrator applies a minimum and the step's timeout).
	State json.RawMessage
	After time.Duration
	// Link points at the remote work for people (a console URL, a status
	// URL), shown with the waiting step.
	Link string
}

// retryAfterError carries the interval a remote service asked for.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks a transient error of Check with the interval to wait
// before checking again (a Retry-After header, for example).
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: d}
}

// RetryAfterOf returns the interval err (or an error it wraps) asks for.
func RetryAfterOf(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}
