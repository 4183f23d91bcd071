package pipeline_test

import (
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps/cloudrunjob/runtest"
)

// Two deployments (two ledgers: say staging and production) running the
// same pipeline for the same date against one Cloud Run job each run it:
// neither adopts the other's execution as its own, because the execution
// key carries the ledger's namespace (as task names do).
func TestAsyncCloudRunJobSharedByDeployments(t *testing.T) {
	srv := runtest.Start(t)
	staging, production := newHarness(t, chainYAML), newHarness(t, chainYAML)
	job := cloudRunHarness(t, staging, srv, runtest.Outcome{Gets: 2}, "6h")
	if again := cloudRunHarness(t, production, srv, runtest.Outcome{Gets: 2}, "6h"); again != job {
		t.Fatalf("the deployments use jobs %s and %s, want one", job, again)
	}
	for i, h := range []*harness{staging, production} {
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		h.deliverShort(30)
		if r := h.run(res.Run.ID); r.Status != pipeline.RunSucceeded {
			t.Fatalf("deployment %d: run %s (%s)", i, r.Status, r.Error)
		}
		if n := runsOf(srv, job); n != i+1 {
			t.Fatalf("after deployment %d: %d RunJob calls, want %d (one per deployment)", i, n, i+1)
		}
	}
}
