package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// A crash between Start and recording its state on the step's last
// attempt: the sweeper, running after the start's lease expired and before
// the queue's redelivery, must not fail the step as "out of attempts" (the
// remote work runs on, and decide would start the same attempt again): it
// re-enqueues the step, whose delivery adopts the work; the run completes.
func TestAsyncSweeperAfterACrashedStartOnTheLastAttempt(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		cl := &crashLedger{Ledger: led}
		h := newHarnessOn(t, chainYAML, cl)
		j := &idJob{polls: 2}
		h.reg.Register("job", func(map[string]any) (steps.Step, error) { return j, nil })
		h.deploy(strings.Replace(waitsYAML, "max_attempts: 2", "max_attempts: 1", 1))
		id, start := deliverStart(t, h)

		cl.crashes.Store(1)
		if _, err := h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{}); err == nil {
			t.Fatal("the wait was not recorded but the delivery succeeded")
		}
		h.advance(pipeline.AsyncRequestTimeout + time.Minute) // the start's lease expires
		rep, err := h.orch.Reconcile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.FailedSteps) != 0 || len(rep.FailedRuns) != 0 {
			t.Fatalf("the sweeper failed a start it should have resumed: %+v (job %+v)", rep, stepOf(h.run(id), "job"))
		}
		if len(rep.Reenqueued) != 1 || rep.Reenqueued[0] != id+"/job" {
			t.Fatalf("sweep: %+v, want the job re-enqueued", rep)
		}
		h.deliverTimed(20)
		r := h.run(id)
		job := stepOf(r, "job")
		if r.Status != pipeline.RunSucceeded || job.Attempts != 1 {
			t.Fatalf("run %s (%s), job %+v", r.Status, r.Error, job)
		}
		if starts, created, _ := j.counts(); starts != 2 || created != 1 {
			t.Fatalf("starts %d, remote jobs created %d; want 2 starts adopting one job", starts, created)
		}
	})
}
