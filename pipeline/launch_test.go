package pipeline_test

import (
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Over a ledger that can launch (local mode), a start is one commit: the
// run is created running with its root enqueued; a duplicate start finds it
// and enqueues nothing; the run then goes its course.
func TestStartOverALauncherIsOneCommit(t *testing.T) {
	h, st := newHandOffHarness(t, chainYAML, nil)
	before := st.Committer().Commits()
	res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
	if err != nil || !res.Created {
		t.Fatalf("Start: %+v, %v", res, err)
	}
	if n := st.Committer().Commits() - before; n != 1 {
		t.Errorf("the start took %d commits, want 1", n)
	}
	if res.Run.Status != pipeline.RunRunning || res.Run.StartedAt.IsZero() {
		t.Errorf("started run %s, started at %v", res.Run.Status, res.Run.StartedAt)
	}
	tasks := h.queue.take()
	if len(tasks) != 1 || tasks[0].Payload.Step != "a" || tasks[0].Payload.Generation != 1 {
		t.Fatalf("queued %+v, want the root a", tasks)
	}
	if n := h.events.count(pipeline.EventRunStarted); n != 1 {
		t.Errorf("%d run_started events, want 1", n)
	}

	h.queue.mu.Lock()
	calls := h.queue.calls
	h.queue.mu.Unlock()
	again, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
	if err != nil || again.Created || again.Run.Status != pipeline.RunRunning {
		t.Fatalf("duplicate Start: %+v, %v", again, err)
	}
	h.queue.mu.Lock()
	enqueues := h.queue.calls - calls
	h.queue.mu.Unlock()
	if enqueues != 0 {
		t.Errorf("a duplicate start made %d enqueues, want none", enqueues)
	}
	if n := h.events.count(pipeline.EventRunStarted); n != 1 {
		t.Errorf("%d run_started events after a duplicate start, want 1", n)
	}

	h.queue.mu.Lock()
	h.queue.tasks = append(h.queue.tasks, tasks...) // deliver the root as the queue would
	h.queue.mu.Unlock()
	errs := h.drain(20)
	if len(errs) != 3 || errs["a"] != nil || errs["b"] != nil || errs["c"] != nil {
		t.Fatalf("delivered %v, want a, b and c, each succeeding", errs)
	}
	if r := h.run(res.Run.ID); r.Status != pipeline.RunSucceeded {
		t.Fatalf("run %s: %s", r.ID, r.Status)
	}
}
