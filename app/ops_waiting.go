package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pipelinehq/pipeline/pipeline"
)

// withSteps reads the steps of each unfinished run of runs (a run list
// carries none), so that the list can show the steps waiting on remote work.
// A run gone since the list (retention) is shown without them.
func withSteps(ctx context.Context, b opsBackend, runs []pipeline.Run) ([]pipeline.Run, error) {
	for i, r := range runs {
		if r.Status.Terminal() || r.Steps != nil {
			continue
		}
		full, err := b.GetRun(ctx, r.ID)
		if errors.Is(err, pipeline.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the steps of run %s: %w", r.ID, err)
		}
		runs[i].Steps = full.Steps
	}
	return runs, nil
}

// listStatus is a run's status in the run list: with the number of its
// steps waiting on remote work (asynchronous steps) and its schedule marks,
// e.g. "running (1 waiting, late)".
func listStatus(r pipeline.Run) string {
	waiting := 0
	for _, s := range r.Steps {
		if s.Status == pipeline.StepWaiting {
			waiting++
		}
	}
	st := statusWithMarks(r)
	if waiting == 0 {
		return st
	}
	mark := fmt.Sprintf("%d waiting", waiting)
	if rest, ok := strings.CutPrefix(st, string(r.Status)+" ("); ok {
		return fmt.Sprintf("%s (%s, %s", r.Status, mark, rest)
	}
	return fmt.Sprintf("%s (%s)", st, mark)
}
