package local

import (
	"net/http"
	"testing"
)

// The header map of a delivery is filled under canonical keys by hand: they
// must be what http.CanonicalHeaderKey makes of the documented names, or
// r.Header.Get(HeaderTaskName) would find nothing.
func TestCanonicalHeaderNames(t *testing.T) {
	for name, canonical := range map[string]string{
		HeaderQueueName:      canonicalQueueName,
		HeaderTaskName:       canonicalTaskName,
		HeaderRetryCount:     canonicalRetryCount,
		HeaderExecutionCount: canonicalExecutionCount,
		HeaderETA:            canonicalETA,
	} {
		if got := http.CanonicalHeaderKey(name); got != canonical {
			t.Errorf("%s: canonical %q, the queue writes %q", name, got, canonical)
		}
	}
}
