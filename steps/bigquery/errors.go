package bigquery

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/api/googleapi"

	"github.com/pipelinehq/pipeline/steps"
)

// transientReasons are BigQuery error reasons worth retrying whatever the
// status code (rateLimitExceeded comes with 403).
var transientReasons = map[string]bool{"rateLimitExceeded": true, "backendError": true, "internalError": true}

// classify wraps err of the API call what: 429, 5xx and the transient
// reasons are transient (with the Retry-After the answer carried), network
// errors too; other API errors are permanent.
func classify(err error, what string) error {
	err = fmt.Errorf("%s: %s: %w", Kind, what, err)
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return err // network, timeout: transient
	}
	transient := ge.Code == http.StatusTooManyRequests || ge.Code >= 500 || ge.Code == http.StatusRequestTimeout
	for _, r := range reasons(ge) {
		transient = transient || transientReasons[r]
	}
	if !transient {
		return steps.Permanent(err)
	}
	if d, ok := retryAfter(ge.Header.Get("Retry-After"), time.Now()); ok {
		return steps.RetryAfter(err, d)
	}
	return err
}

func reasons(ge *googleapi.Error) []string {
	out := make([]string, 0, len(ge.Errors))
	for _, e := range ge.Errors {
		out = append(out, e.Reason)
	}
	return out
}

func isDuplicate(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusConflict
}

func isNotFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
