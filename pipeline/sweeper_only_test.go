package pipeline_test

import (
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

// An --only re-run whose task was lost (the enqueue failed after the step's
// new generation was written) is queued by the sweeper: the --only run's
// other steps are left alone, not the step the operator asked for (it stayed
// pending and the run running for good).
func TestSweeperQueuesALostOnlyStep(t *testing.T) {
	h := newHarness(t, chainYAML)
	id := startAndDrain(t, h, "2026-11-23")
	h.queue.mu.Lock()
	h.queue.failing = 1
	h.queue.mu.Unlock()
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "b", Force: true, Only: true}); err == nil {
		t.Fatal("setup: the enqueue did not fail")
	}
	if r := h.run(id); stepOf(r, "b").Generation != 2 || r.Status != pipeline.RunRunning {
		t.Fatalf("setup: b generation %d, run %s; want the force written, the run reopened", stepOf(r, "b").Generation, r.Status)
	}
	if _, err := h.orch.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	h.drain(50)
	r := h.run(id)
	if b, c := h.bodies["b"].runs.Load(), h.bodies["c"].runs.Load(); b != 2 || c != 1 || r.Status != pipeline.RunSucceeded {
		t.Fatalf("b ran %d, c ran %d, run %s; want 2, 1 (--only), succeeded", b, c, r.Status)
	}
}
