package cloudrunjob

import (
	"errors"
	"fmt"

	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipelinehq/pipeline/steps"
)

// permanentCodes are the API answers that retrying does not change.
var permanentCodes = map[codes.Code]bool{
	codes.InvalidArgument: true, codes.NotFound: true, codes.FailedPrecondition: true,
	codes.PermissionDenied: true, codes.AlreadyExists: true, codes.OutOfRange: true,
	codes.Unimplemented: true, codes.Unauthenticated: true,
}

// classify wraps an API error of what: permanent for the codes retrying
// does not change, otherwise transient with the retry delay the API asked
// for (RetryInfo), if any.
func classify(what string, err error) error {
	code := status.Code(err)
	wrapped := fmt.Errorf("cloudrun.job: %s: %w", what, err)
	switch code {
	case codes.Unauthenticated:
		return credentialsHint(wrapped)
	case codes.PermissionDenied:
		wrapped = fmt.Errorf("%w (the service's account needs %s and %s on the job, "+
			"and roles/iam.serviceAccountUser on the job's service account: `pipeline doctor` lists them)", wrapped, Role, ViewerRole)
	}
	if permanentCodes[code] {
		return steps.Permanent(wrapped)
	}
	var ae *apierror.APIError
	if errors.As(err, &ae) {
		if d := ae.Details().RetryInfo.GetRetryDelay(); d != nil && d.AsDuration() > 0 {
			return steps.RetryAfter(wrapped, d.AsDuration())
		}
	}
	return wrapped
}

// finished reports whether a CancelExecution error says there is nothing
// left to cancel (the execution finished or is gone).
func finished(err error) bool {
	c := status.Code(err)
	return c == codes.NotFound || c == codes.FailedPrecondition
}
