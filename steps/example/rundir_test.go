package example_test

import (
	"path/filepath"
	"testing"

	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/example"
)

func TestRunDirIsNamedByRunKey(t *testing.T) {
	for _, tc := range []struct {
		runID, want string
	}{
		{"daily@2026-03-14", filepath.Join("d", "daily", "2026-03-14")}, // a scheduled run: its key is its date
		{"daily@retry-1", filepath.Join("d", "daily", "retry-1")},       // run --key retry-1 --date 2026-03-14
		{"", filepath.Join("d", "daily", "2026-03-14")},                 // no run id: the date
	} {
		got, err := example.RunDir("d", steps.Input{RunID: tc.runID, Pipeline: "daily", Date: runDate})
		if err != nil || got != tc.want {
			t.Errorf("%q: RunDir = %q, %v; want %q", tc.runID, got, err, tc.want)
		}
	}
	if _, err := example.RunDir("d", steps.Input{RunID: "daily@..", Pipeline: "daily", Date: runDate}); !steps.IsPermanent(err) {
		t.Errorf("key .. : err = %v, want a permanent error", err)
	}
}
