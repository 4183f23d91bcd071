package pipeline

import (
	"context"
	"errors"
	"time"
)

// ErrShutdown is the cancellation cause a server gives the contexts of the
// requests in flight when it shuts down (context.WithCancelCause). A step
// body interrupted by it is released at once and its attempt not counted;
// notifications are not waited for (a final one stays owed in the ledger).
var ErrShutdown = errors.New("service is shutting down")

// bookkeepingTimeout bounds what a delivery does after its step's body ran
// (record the result, enqueue successors, finish the run), independently of
// the request that carried it.
const bookkeepingTimeout = 30 * time.Second

// requestKey holds, in a detached context, the request context it was
// detached from: shutdown is still seen through it.
type requestKey struct{}

// detach returns a context that the end of the request (ctx) does not
// cancel, with its own bound: once a body has run, recording its result must
// not be abandoned because the dispatcher's connection dropped or the
// process is shutting down. Values (trace, logger) are kept.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	d := context.WithValue(context.WithoutCancel(ctx), requestKey{}, requestOf(ctx))
	return context.WithTimeout(d, bookkeepingTimeout)
}

// requestOf is the request context ctx was detached from, or ctx.
func requestOf(ctx context.Context) context.Context {
	if r, ok := ctx.Value(requestKey{}).(context.Context); ok {
		return r
	}
	return ctx
}

// shuttingDown reports whether the request behind ctx was cancelled because
// the server is shutting down.
func shuttingDown(ctx context.Context) bool {
	r := requestOf(ctx)
	return r.Err() != nil && errors.Is(context.Cause(r), ErrShutdown)
}

// workContext is the context a step's work (a body, an asynchronous step's
// Start or Check) runs on: the request's values, not its end. A dropped
// dispatcher connection does not interrupt the work (its timeout bounds it,
// and the lease outlasts the timeout, so a retry of the delivery waits for
// its result); shutdown does, with ErrShutdown as the cause, so that the step
// is released at once. Call stop when the work returned.
func workContext(ctx context.Context) (work context.Context, stop func()) {
	work, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	unhook := context.AfterFunc(ctx, func() {
		if cause := context.Cause(ctx); errors.Is(cause, ErrShutdown) {
			cancel(cause)
		}
	})
	return work, func() {
		unhook()
		cancel(nil)
	}
}
