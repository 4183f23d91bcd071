package cloudtasks

import (
	"time"

	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
)

// CreateTask retry policy. The client library does not retry CreateTask;
// Enqueue does, because task names are deterministic and AlreadyExists on a
// retry means an earlier attempt landed.
const (
	createAttempts   = 5
	createBackoffMin = 100 * time.Millisecond
	createBackoffMax = 2 * time.Second
)

// retryCodes are the CreateTask failures worth another attempt.
var retryCodes = []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted}

// boundedRetryer gives up after a number of retries.
type boundedRetryer struct {
	gax.Retryer
	left int
}

func (r *boundedRetryer) Retry(err error) (time.Duration, bool) {
	if r.left <= 0 {
		return 0, false
	}
	r.left--
	return r.Retryer.Retry(err)
}

// createRetry is the call option that retries CreateTask.
func createRetry() gax.CallOption {
	return gax.WithRetry(func() gax.Retryer {
		return &boundedRetryer{
			Retryer: gax.OnCodes(retryCodes, gax.Backoff{
				Initial:    createBackoffMin,
				Max:        createBackoffMax,
				Multiplier: 2,
			}),
			left: createAttempts - 1,
		}
	})
}
