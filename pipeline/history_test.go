package pipeline_test

import (
	"errors"
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

// TestRetriedStepKeepsEveryAttempt: a step that fails once and then
// succeeds shows both attempts in its history, on both ledgers, with the
// first one's error and the times the orchestrator recorded.
func TestRetriedStepKeepsEveryAttempt(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		h.bodies["b"].fail = func(attempt int) error {
			if attempt < 2 {
				return errors.New("flaky warehouse")
			}
			return nil
		}
		if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
			t.Fatal(err)
		}
		h.drain(20)
		r := h.run("chain@2026-11-23")
		b := stepOf(r, "b")
		if r.Status != pipeline.RunSucceeded || len(b.History) != 2 {
			t.Fatalf("run %s, history of b %+v", r.Status, b.History)
		}
		first, second := b.History[0], b.History[1]
		if first.N != 1 || first.Status != pipeline.StepRetrying || first.Error != "flaky warehouse" || first.FinishedAt.IsZero() {
			t.Errorf("first attempt %+v, want attempt 1 retrying with its error and end", first)
		}
		if second.N != 2 || second.Status != pipeline.StepSucceeded || second.Error != "" || !second.StartedAt.Equal(b.StartedAt) || !second.FinishedAt.Equal(b.FinishedAt) {
			t.Errorf("second attempt %+v, want attempt 2 succeeded at the step's times %v–%v", second, b.StartedAt, b.FinishedAt)
		}
		if a := stepOf(r, "a"); len(a.History) != 1 || a.History[0].Status != pipeline.StepSucceeded {
			t.Errorf("history of a %+v, want one succeeded attempt", a.History)
		}
	})
}
