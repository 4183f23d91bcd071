package pipeline

import (
	"net/http"
	"testing"
)

func TestDeliveryHeaderKeysAreCanonical(t *testing.T) {
	for name, key := range map[string]string{"X-CloudTasks-TaskName": headerTaskName, "X-CloudTasks-TaskRetryCount": headerRetryCount} {
		if got := http.CanonicalHeaderKey(name); got != key {
			t.Errorf("%s is keyed %q, the handler reads %q", name, got, key)
		}
	}
}
