package pipeline_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
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

// A step a resume puts back to pending (d, cancelled, its predecessor b
// still running) is enqueued by b when b succeeds. When b succeeds after the
// steps were renewed but before the resume reopens the run, d's delivery
// finds the run still cancelled and cancels d again in its new generation,
// using up its task name: the resume must enqueue d itself once the run is
// open, or the run never ends (seen in the chaos re-run scenario on gcp).
func TestResumeEnqueuesAStepCancelledAgainBeforeTheReopen(t *testing.T) {
	const yamlText = `
name: late
time_zone: UTC
steps:
  - {name: a, kind: a, after: []}
  - {name: b, kind: b, after: [a]}
  - {name: c, kind: c, after: [a]}
  - {name: d, kind: d, after: [b, c]}
  - {name: e, kind: root, after: [a]}
`
	led := &beforeUpdateRun{}
	base, err := boltledger.Open(t.TempDir() + "/ledger.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	led.Ledger = base
	h := newHarnessOn(t, yamlText, led)
	res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "late", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Run.ID
	deliver := func(task pipeline.Task) error {
		_, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name})
		return err
	}
	byStep := func(tasks []pipeline.Task) map[string]pipeline.Task {
		m := map[string]pipeline.Task{}
		for _, task := range tasks {
			m[task.Payload.Step] = task
		}
		return m
	}
	if err := deliver(byStep(h.queue.take())["a"]); err != nil {
		t.Fatal(err)
	}
	tasks := byStep(h.queue.take()) // b, c, e
	if err := deliver(tasks["c"]); err != nil {
		t.Fatal(err)
	}
	// b runs through the cancel and the resume; e is never delivered.
	b := h.bodies["b"]
	b.gate, b.started = make(chan struct{}), make(chan context.Context, 1)
	bDone := make(chan error, 1)
	go func() { bDone <- deliver(tasks["b"]) }()
	<-b.started
	if _, err := h.orch.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := h.run(id); r.Status != pipeline.RunCancelled || stepOf(r, "d").Status != pipeline.StepCancelled {
		t.Fatalf("after the cancel: run %s, d %s", r.Status, stepOf(r, "d").Status)
	}
	// Before the resume reopens the run: b succeeds, enqueuing d in the
	// generation the resume gave it, and that task is delivered at once.
	led.hook = func() {
		b.started = nil
		close(b.gate)
		if err := <-bDone; err != nil {
			t.Errorf("b: %v", err)
		}
		for _, task := range h.queue.take() {
			if err := deliver(task); err != nil {
				t.Errorf("%s before the reopen: %v", task.Payload.Step, err)
			}
		}
		if d := stepOf(h.run(id), "d"); d.Status != pipeline.StepCancelled || d.Generation != 2 {
			t.Errorf("d before the reopen: %s in generation %d; want cancelled again in generation 2", d.Status, d.Generation)
		}
	}
	led.armed.Store(true)
	if _, err := h.orch.Resume(ctx, id); err != nil {
		t.Fatalf("resume: %v", err)
	}
	b.gate = nil
	drainToSuccess(t, h, id, "after the resume", "d")
}

// A step a resume enqueues itself (d: cancelled, its predecessors
// succeeded) gets a new generation first; the enqueue then reads d pending
// in it and reopens the run. When a task of that generation (a
// predecessor's duplicate delivery enqueues it) is delivered between that
// read and the reopen, it finds the run still cancelled, cancels d again and
// uses up the task name: the enqueue after the reopen is swallowed by the
// queue's dedup, and the run would stay running for good (the chaos re-run
// scenario on gcp, stuck with d cancelled in its renewed generation). The
// enqueue must see that once the run is open and go again.
func TestResumeReEnqueuesAReadyStepCancelledBeforeTheReopen(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		hl := &beforeUpdateRun{Ledger: led}
		h := newHarnessOn(t, chainYAML, hl)
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		id := res.Run.ID
		deliver := func(task pipeline.Task) {
			t.Helper()
			if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name}); err != nil {
				t.Fatalf("%s: %v", task.Payload.Step, err)
			}
		}
		for _, step := range []string{"a", "b"} {
			tasks := h.queue.take()
			if len(tasks) != 1 || tasks[0].Payload.Step != step {
				t.Fatalf("queued %+v, want %s", tasks, step)
			}
			deliver(tasks[0])
		}
		h.queue.take() // c's task, never delivered: the cancel comes first
		if _, err := h.orch.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		if c := stepOf(h.run(id), "c"); c.Status != pipeline.StepCancelled || c.Generation != 1 {
			t.Fatalf("c after the cancel: %s in generation %d", c.Status, c.Generation)
		}
		hl.hook = func() {
			// Between the enqueue's read of c (pending in generation 2)
			// and the reopen: a task of c's new generation is delivered.
			r := h.run(id)
			if c := stepOf(r, "c"); c.Status != pipeline.StepPending || c.Generation != 2 {
				t.Errorf("c before the reopen: %s in generation %d; want pending in 2", c.Status, c.Generation)
			}
			task := pipeline.Task{Name: h.orch.TaskName(id, "c", 2),
				Payload: pipeline.TaskPayload{RunID: id, Step: "c", Generation: 2, Date: r.Date}}
			if err := h.queue.Enqueue(ctx, task); err != nil {
				t.Error(err)
			}
			deliver(h.queue.take()[0])
			if c := stepOf(h.run(id), "c"); c.Status != pipeline.StepCancelled || c.Generation != 2 {
				t.Errorf("c before the reopen: %s in generation %d; want cancelled again in 2", c.Status, c.Generation)
			}
		}
		hl.armed.Store(true)
		if _, err := h.orch.Resume(ctx, id); err != nil {
			t.Fatalf("resume: %v", err)
		}
		drainToSuccess(t, h, id, "after the resume", "c")
	})
}

// afterGetRun calls hook (once armed) after a run read returns: between a
// delivery's read of its ended run and its stop of the step.
type afterGetRun struct {
	pipeline.Ledger
	armed atomic.Bool
	hook  func()
}

func (l *afterGetRun) GetRun(ctx context.Context, id string) (pipeline.Run, error) {
	r, err := l.Ledger.GetRun(ctx, id)
	if l.armed.CompareAndSwap(true, false) {
		l.hook()
	}
	return r, err
}

// The narrower window of the race above: a delivery of c's new generation
// reads the run while it is still cancelled, and writes its stop only after
// the resume has reopened the run, enqueued c (the name is the delivery's
// own: the queue takes it as a duplicate) and looked again (c still
// pending). The delivery must see the reopen after its stop, put c back and
// answer "retry": its task is retried and c runs, instead of the run
// staying running with c cancelled and nothing queued.
func TestDeliveryStoppingAStepPutsItBackWhenTheRunWasReopenedMeanwhile(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		gr := &afterGetRun{Ledger: led}
		hl := &beforeUpdateRun{Ledger: gr}
		h := newHarnessOn(t, chainYAML, hl)
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		id := res.Run.ID
		for _, step := range []string{"a", "b"} {
			tasks := h.queue.take()
			if len(tasks) != 1 || tasks[0].Payload.Step != step {
				t.Fatalf("queued %+v, want %s", tasks, step)
			}
			if _, err := h.orch.HandleStep(ctx, tasks[0].Payload, pipeline.Delivery{TaskName: tasks[0].Name}); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
		h.queue.take() // c's task, never delivered: the cancel comes first
		if _, err := h.orch.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		if r := h.run(id); r.Status != pipeline.RunCancelled { // the cancel's notification is sent
			t.Fatalf("after the cancel: run %s", r.Status)
		}
		task := pipeline.Task{Name: h.orch.TaskName(id, "c", 2),
			Payload: pipeline.TaskPayload{RunID: id, Step: "c", Generation: 2, Date: "2026-11-23"}}
		readRun, release := make(chan struct{}), make(chan struct{})
		type outcome struct {
			res pipeline.StepResult
			err error
		}
		delivered := make(chan outcome, 1)
		hl.hook = func() {
			// Before the reopen, c pending in generation 2: its task is
			// delivered, reads the run (still cancelled) and is held
			// there until the resume is over.
			if err := h.queue.Enqueue(ctx, task); err != nil {
				t.Error(err)
			}
			h.queue.take()
			gr.hook = func() {
				close(readRun)
				<-release
			}
			gr.armed.Store(true)
			go func() {
				res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name})
				delivered <- outcome{res, err}
			}()
			<-readRun
		}
		hl.armed.Store(true)
		if _, err := h.orch.Resume(ctx, id); err != nil {
			t.Fatalf("resume: %v", err)
		}
		if c := stepOf(h.run(id), "c"); c.Status != pipeline.StepPending || c.Generation != 2 {
			t.Fatalf("c after the resume: %s in generation %d; want pending in 2", c.Status, c.Generation)
		}
		close(release)
		got := <-delivered
		if !errors.Is(got.err, pipeline.ErrConflict) {
			t.Fatalf("the delivery that stopped c in a reopened run answered %+v, %v; want a conflict (retry)", got.res, got.err)
		}
		if c := stepOf(h.run(id), "c"); c.Status != pipeline.StepPending || c.Generation != 2 {
			t.Fatalf("c after the delivery: %s in generation %d; want put back, pending in 2", c.Status, c.Generation)
		}
		// The queue retries the task.
		if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name}); err != nil {
			t.Fatalf("c's retry: %v", err)
		}
		drainToSuccess(t, h, id, "after the retry", "c")
	})
}

// drainToSuccess delivers what is queued and checks that run id succeeded
// (after: what came before, for the message) with step's body run once.
func drainToSuccess(t *testing.T, h *harness, id, after, step string) {
	t.Helper()
	h.drain(50)
	r := h.run(id)
	if r.Status != pipeline.RunSucceeded {
		t.Fatalf("%s: run %s %q, %s %s in generation %d; want succeeded", after, r.Status, r.Error, step, stepOf(r, step).Status, stepOf(r, step).Generation)
	}
	if n := h.bodies[step].runs.Load(); n != 1 {
		t.Errorf("%s ran %d times, want once", step, n)
	}
}

// afterStop calls hook (once armed) after a step write that stopped step
// (cancelled or skipped it) committed: between a delivery's stop and its
// second look at the run.
type afterStop struct {
	pipeline.Ledger
	step  string
	armed atomic.Bool
	hook  func()
}

func (l *afterStop) UpdateStep(ctx context.Context, s pipeline.StepRun) (pipeline.StepRun, error) {
	stored, err := l.Ledger.UpdateStep(ctx, s)
	if err == nil && s.Step == l.step && (s.Status == pipeline.StepSkipped || s.Status == pipeline.StepCancelled) && l.armed.CompareAndSwap(true, false) {
		l.hook()
	}
	return stored, err
}

// A waiting step's check finds its run failed and stops the step; before it
// looks at the run again, an operator's enqueue reads the step stopped,
// renews it and reopens the run. The check's put-back then loses to the
// renewal: for the stopped generation the stop stands, so the remote work
// it waited on must be cancelled (the renewal saw no waiting step to cancel
// the work of), and the check answers a conflict.
func TestStopThatLosesItsPutBackCancelsTheRemoteWork(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		hl := &afterStop{Ledger: led, step: "job"}
		h := newHarnessOn(t, chainYAML, hl)
		j := &fakeJob{polls: 3, after: time.Hour}
		withJob(t, h, waitsYAML, j)
		id, c1 := startWaiting(t, h)
		// Another branch failed the run while job waits.
		r := h.run(id)
		r.Steps = nil
		r.Status, r.Error, r.FinishedAt = pipeline.RunFailed, "step x failed: boom", h.clock()
		if _, err := led.UpdateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		hl.hook = func() {
			if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "job"}); err != nil {
				t.Errorf("enqueue of the stopped step: %v", err)
			}
		}
		hl.armed.Store(true)
		h.advance(time.Hour)
		_, err := h.orch.HandleStep(ctx, c1.Payload, pipeline.Delivery{TaskName: c1.Name})
		if !errors.Is(err, pipeline.ErrConflict) {
			t.Fatalf("the check whose stop lost to a renewal answered %v; want a conflict", err)
		}
		if hl.armed.Load() {
			t.Fatal("setup: the check did not stop the step")
		}
		if s, c, x := j.counts(); s != 1 || c != 0 || x != 1 {
			t.Fatalf("starts %d checks %d cancels %d, want 1 0 1: the abandoned work is cancelled", s, c, x)
		}
		if job := stepOf(h.run(id), "job"); job.Generation != 2 || job.Status != pipeline.StepPending {
			t.Fatalf("job %s in generation %d, want pending in 2", job.Status, job.Generation)
		}
	})
}
