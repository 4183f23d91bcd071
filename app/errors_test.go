package app

import (
	"path/filepath"
	"strings"
	"testing"
)

// A mistyped pipeline in a run ID says the pipeline is unknown, lists the
// loaded ones and suggests the closest.
func TestStatusOfAnUnknownPipeline(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	_, _, err := runArgs(t, "status", "daly@2026-12-01", "--file", repoPipelines, "--data", data)
	if ExitCode(err) != ExitFailed {
		t.Fatalf("exit %d (%v), want 1", ExitCode(err), err)
	}
	for _, want := range []string{`pipeline "daly" is unknown`, "loaded: daily", "did you mean daily?"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
