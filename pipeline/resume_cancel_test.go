package pipeline_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

// cancelDuringForcedLeft starts and drains a fan run, forces left, and
// cancels the run while left's re-run is in flight; left then succeeds (its
// result is recorded), leaving join on left's superseded output.
func cancelDuringForcedLeft(t *testing.T, h *harness) string {
	t.Helper()
	res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "fan", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Run.ID
	h.drain(50)
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "left", Force: true}); err != nil {
		t.Fatal(err)
	}
	task := h.queue.take()[0]
	left := h.bodies["left"]
	left.gate, left.started = make(chan struct{}), make(chan context.Context, 1)
	done := make(chan error, 1)
	go func() {
		_, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name})
		done <- err
	}()
	<-left.started
	if _, err := h.orch.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	left.started = nil
	close(left.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	left.gate = nil
	return id
}

// A cancel during a re-run cascade leaves a step on a superseded input (the
// re-run predecessor's result is recorded, the cascade stops); resume runs it
// again (it was refused: "no failed or pending step").
func TestResumeAfterACancelledCascadeReRunsTheStaleStep(t *testing.T) {
	h := newHarness(t, fanYAML)
	id := cancelDuringForcedLeft(t, h)
	h.drain(50) // the cascade's task (if any) finds the run cancelled
	if r := h.run(id); r.Status != pipeline.RunCancelled || h.bodies["join"].runs.Load() != 1 {
		t.Fatalf("after the cancel: run %s, join ran %d times", r.Status, h.bodies["join"].runs.Load())
	}
	if _, err := h.orch.Resume(ctx, id); err != nil {
		t.Fatalf("resume: %v", err)
	}
	h.drain(50)
	r := h.run(id)
	if r.Status != pipeline.RunSucceeded || h.bodies["join"].runs.Load() != 2 {
		t.Fatalf("after resume: run %s %q, join ran %d times; want succeeded, 2", r.Status, r.Error, h.bodies["join"].runs.Load())
	}
	checkConsumed(t, h, r)
}

// beforeUpdateRun calls hook (once armed) before a run update: between a
// resume's read of the steps and its reopen of the run.
type beforeUpdateRun struct {
	pipeline.Ledger
	armed atomic.Bool
	hook  func()
}

func (l *beforeUpdateRun) UpdateRun(ctx context.Context, r pipeline.Run) (pipeline.Run, error) {
	if l.armed.CompareAndSwap(true, false) {
		l.hook()
	}
	return l.Ledger.UpdateRun(ctx, r)
}

// A resume that read a step pending in a generation whose task was already
// queued must not reuse that task's name: the task, delivered while the run
// was still cancelled, marks the step cancelled and uses the name, and the
// resume's enqueue of the same name is swallowed (the run stayed running
// with nothing queued: stranded).
func TestResumeDoesNotReuseATaskNameTheCancelledRunUsed(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		hl := &beforeUpdateRun{Ledger: led}
		h := newHarnessOn(t, fanYAML, hl)
		id := cancelDuringForcedLeft(t, h)
		queued := h.queue.take() // join's task, not yet delivered
		hl.hook = func() {
			for _, task := range queued {
				if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name}); err != nil {
					t.Errorf("deliver %s during the resume: %v", task.Name, err)
				}
			}
		}
		if j := stepOf(h.run(id), "join"); j.Status != pipeline.StepPending || len(queued) == 0 {
			t.Fatalf("setup: join is %s with %d tasks queued; the cascade did not leave it pending", j.Status, len(queued))
		}
		hl.armed.Store(true)
		if _, err := h.orch.Resume(ctx, id); err != nil {
			t.Fatalf("resume: %v", err)
		}
		if hl.armed.Load() {
			t.Fatal("setup: the hook did not fire")
		}
		h.drain(50)
		r := h.run(id)
		if r.Status != pipeline.RunSucceeded || h.bodies["join"].runs.Load() != 2 {
			t.Fatalf("after resume: run %s, join %s, join ran %d times; want succeeded, 2", r.Status, stepOf(r, "join").Status, h.bodies["join"].runs.Load())
		}
		checkConsumed(t, h, r)
	})
}

// beforeGetSteps calls hook (once armed) before a read of the named steps.
type beforeGetSteps struct {
	pipeline.Ledger
	step  string
	armed atomic.Bool
	hook  func()
}

func (l *beforeGetSteps) GetSteps(ctx context.Context, id string, steps ...string) ([]pipeline.StepRun, error) {
	if len(steps) > 0 && steps[0] == l.step && l.armed.CompareAndSwap(true, false) {
		l.hook()
	}
	return l.Ledger.GetSteps(ctx, id, steps...)
}

// A resume between a re-run step's success (recorded after a cancel) and its
// cascade finds its successor succeeded on the superseded output: it re-runs
// it (it answered "no failed or pending step" and left the run cancelled
// with join stale).
func TestResumeBeforeTheCascadeReRunsTheStaleStep(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		hl := &beforeGetSteps{Ledger: led, step: "join"}
		h := newHarnessOn(t, fanYAML, hl)
		var id string
		resumed := make(chan error, 1)
		hl.hook = func() { _, err := h.orch.Resume(ctx, id); resumed <- err }
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "fan", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		id = res.Run.ID
		h.drain(50)
		if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "left", Force: true}); err != nil {
			t.Fatal(err)
		}
		task := h.queue.take()[0]
		left := h.bodies["left"]
		left.gate, left.started = make(chan struct{}), make(chan context.Context, 1)
		done := make(chan error, 1)
		go func() {
			_, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name})
			done <- err
		}()
		<-left.started
		if _, err := h.orch.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		hl.armed.Store(true) // left's cascade reads join: the resume comes first
		left.started = nil
		close(left.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-resumed:
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
		default:
			t.Fatal("setup: the resume did not run during left's cascade")
		}
		h.drain(50)
		r := h.run(id)
		if r.Status != pipeline.RunSucceeded || h.bodies["join"].runs.Load() != 2 {
			t.Fatalf("after resume: run %s, join %s, join ran %d times; want succeeded, 2", r.Status, stepOf(r, "join").Status, h.bodies["join"].runs.Load())
		}
		checkConsumed(t, h, r)
	})
}
