package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// Once a body has run, recording its result, enqueueing successors and
// finishing the run do not depend on the request: a request context cancelled
// right after the body (a dropped dispatcher connection) abandons none of it.
func TestBookkeepingAfterTheBodyOutlivesTheRequest(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		h := newHarnessOn(t, chainYAML, led)
		start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []string{"a", "b", "c"} {
			task := h.queue.take()[0]
			rctx, cancel := context.WithCancel(context.Background())
			h.bodies[step].after = cancel // the connection drops as the body returns
			res, err := h.orch.HandleStep(rctx, task.Payload, pipeline.Delivery{TaskName: task.Name})
			if err != nil || res.Outcome != pipeline.OutcomeSucceeded {
				t.Fatalf("%s: %+v, %v", step, res, err)
			}
			if rctx.Err() == nil {
				t.Fatal("the request context was not cancelled")
			}
		}
		r := h.run(start.Run.ID)
		if r.Status != pipeline.RunSucceeded || r.Notify != pipeline.NotifyDone {
			t.Fatalf("run %s (notify %q) %q", r.Status, r.Notify, r.Error)
		}
	})
}

// A failure after the body is recorded even when the request is gone.
func TestFailureIsRecordedAfterTheRequestEnded(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		h := newHarnessOn(t, chainYAML, led)
		h.bodies["a"].fail = func(int) error { return errors.New("upstream 503") }
		start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		task := h.queue.take()[0]
		rctx, cancel := context.WithCancel(context.Background())
		h.bodies["a"].after = cancel
		_, err = h.orch.HandleStep(rctx, task.Payload, pipeline.Delivery{})
		var re *pipeline.RetryableError
		if !errors.As(err, &re) {
			t.Fatalf("err = %v, want a retryable failure", err)
		}
		a := stepOf(h.run(start.Run.ID), "a")
		if a.Status != pipeline.StepRetrying || a.Attempts != 1 || !a.LeaseUntil.IsZero() {
			t.Fatalf("a = %s attempts %d lease %v", a.Status, a.Attempts, a.LeaseUntil)
		}
	})
}

// A shutdown during a body releases the step at once (lease cleared, the
// interruption recorded, the attempt not counted): the retry after the
// restart takes over immediately, without waiting for the lease.
func TestShutdownDuringABodyReleasesTheStep(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		h := newHarnessOn(t, chainYAML, led)
		start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		task := h.queue.take()[0]
		body := h.bodies["a"]
		body.delay = time.Hour // runs until shut down
		body.started = make(chan context.Context, 1)
		rctx, cancel := context.WithCancelCause(context.Background())
		type result struct {
			res pipeline.StepResult
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := h.orch.HandleStep(rctx, task.Payload, pipeline.Delivery{})
			done <- result{res, err}
		}()
		<-body.started
		cancel(pipeline.ErrShutdown)
		got := <-done
		if !errors.Is(got.err, pipeline.ErrShutdown) || pipeline.ErrorStatus(got.err) != 503 {
			t.Fatalf("interrupted delivery = %+v, %v; want a 503 for shutdown", got.res, got.err)
		}
		a := stepOf(h.run(start.Run.ID), "a")
		if a.Status != pipeline.StepRetrying || a.Attempts != 0 || !a.LeaseUntil.IsZero() || !strings.Contains(a.Error, "interrupted by shutdown") {
			t.Fatalf("a after shutdown = %s attempts %d lease %v %q", a.Status, a.Attempts, a.LeaseUntil, a.Error)
		}
		// The restarted service's retry runs at once: no lease to wait out.
		body.delay, body.started = 0, nil
		res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{})
		if err != nil || res.Outcome != pipeline.OutcomeSucceeded || res.Attempt != 1 {
			t.Fatalf("retry after restart = %+v, %v", res, err)
		}
	})
}

// Steps of a run the sweeper failed for exceeding max_run_duration are
// refused, saying why: the ones not started yet, and the retry of one that
// was in flight.
func TestStepsOfARunFailedByTheSweeperAreRefused(t *testing.T) {
	h := newHarness(t, strings.Replace(fanYAML, "time_zone: UTC", "time_zone: UTC\nmax_run_duration: 1h", 1))
	h.bodies["left"].fail = func(attempt int) error {
		if attempt == 1 {
			return errors.New("transient")
		}
		return nil
	}
	start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "fan", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	deliverOne(t, h, "root")
	tasks := h.queue.take() // left and right
	for _, task := range tasks {
		if task.Payload.Step == "left" {
			if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{}); err == nil {
				t.Fatal("left's first attempt should fail")
			}
		}
	}
	h.advance(2 * time.Hour)
	rep, err := h.orch.Reconcile(ctx)
	if err != nil || len(rep.FailedRuns) != 1 {
		t.Fatalf("reconcile = %+v, %v", rep, err)
	}
	for _, task := range tasks { // left's retry, right's first delivery
		res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{})
		if err != nil || res.Outcome != pipeline.OutcomeNotRunnable {
			t.Fatalf("%s after the run failed = %+v, %v", task.Payload.Step, res, err)
		}
	}
	if h.bodies["left"].runs.Load() != 1 || h.bodies["right"].runs.Load() != 0 {
		t.Fatalf("left ran %d, right ran %d; want 1 and 0", h.bodies["left"].runs.Load(), h.bodies["right"].runs.Load())
	}
	r := h.run(start.Run.ID)
	for _, name := range []string{"left", "right", "join"} {
		s := stepOf(r, name)
		if s.Status != pipeline.StepSkipped || !strings.Contains(s.Error, "max_run_duration") {
			t.Errorf("%s = %s %q, want skipped saying why", name, s.Status, s.Error)
		}
	}
	if r.Status != pipeline.RunFailed {
		t.Fatalf("run %s", r.Status)
	}
}

// The sweeper's re-enqueue of an operator's --only step keeps --only: its
// successors do not run again.
func TestSweeperKeepsOnly(t *testing.T) {
	h := newHarness(t, chainYAML)
	id := startAndDrain(t, h, "2026-11-23")
	h.bodies["b"].fail = func(attempt int) error {
		if attempt == 1 {
			return errors.New("transient")
		}
		return nil
	}
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "b", Force: true, Only: true}); err != nil {
		t.Fatal(err)
	}
	task := h.queue.take()[0]
	if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{}); err == nil {
		t.Fatal("b's first attempt should fail")
	}
	// The queue's retry is lost; the sweeper re-enqueues b.
	h.advance(20 * time.Minute)
	rep, err := h.orch.Reconcile(ctx)
	if err != nil || len(rep.Reenqueued) != 1 {
		t.Fatalf("reconcile = %+v, %v", rep, err)
	}
	h.drain(20)
	if b, c := h.bodies["b"].runs.Load(), h.bodies["c"].runs.Load(); b != 3 || c != 1 {
		t.Fatalf("b ran %d, c ran %d; want 3 (1 + a failed and a swept attempt) and 1", b, c)
	}
	if r := h.run(id); r.Status != pipeline.RunSucceeded || !stepOf(r, "b").Only {
		t.Fatalf("run %s, b only=%v", r.Status, stepOf(r, "b").Only)
	}
}

// A resume that answers 409 changes nothing (it used to renew cancelled
// steps before finding nothing to enqueue).
func TestRefusedResumeChangesNothing(t *testing.T) {
	h := newHarness(t, chainYAML)
	start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	// a is running (its lease held) when an operator cancels the run.
	task := h.queue.take()[0]
	got, _ := h.ledger.GetSteps(ctx, start.Run.ID, "a")
	a := got[0]
	a.Status, a.Attempts, a.LeaseUntil = pipeline.StepRunning, 1, h.clock().Add(time.Hour)
	if _, err := h.ledger.UpdateStep(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := h.orch.Cancel(ctx, start.Run.ID); err != nil {
		t.Fatal(err)
	}
	before := h.run(start.Run.ID)
	_, err = h.orch.Resume(ctx, start.Run.ID)
	if !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("resume = %v, want 409", err)
	}
	after := h.run(start.Run.ID)
	if after.Version != before.Version {
		t.Errorf("run changed: version %d -> %d", before.Version, after.Version)
	}
	for i := range before.Steps {
		if b, a := before.Steps[i], after.Steps[i]; b.Version != a.Version || b.Status != a.Status || b.Generation != a.Generation {
			t.Errorf("step %s changed: %s g%d -> %s g%d", b.Step, b.Status, b.Generation, a.Status, a.Generation)
		}
	}
	_ = task
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

// barrierLedger holds every GetSteps of one step until n callers read it, so
// that n deliveries all see the same state before any of them writes.
type barrierLedger struct {
	pipeline.Ledger
	step    string
	arrived sync.WaitGroup
}

func (l *barrierLedger) GetSteps(ctx context.Context, runID string, steps ...string) ([]pipeline.StepRun, error) {
	got, err := l.Ledger.GetSteps(ctx, runID, steps...)
	if len(steps) > 0 && steps[0] == l.step {
		l.arrived.Done()
		l.arrived.Wait()
	}
	return got, err
}

// "lease expired; taking over" is logged by the one delivery whose claim
// succeeded, not by every duplicate that saw the expired lease.
func TestTakeOverIsLoggedOnlyByTheWinningDelivery(t *testing.T) {
	const n = 8
	h := newHarness(t, chainYAML)
	start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	task := h.queue.take()[0]
	got, _ := h.ledger.GetSteps(ctx, start.Run.ID, "a")
	a := got[0]
	a.Status, a.Attempts, a.LeaseUntil = pipeline.StepRunning, 1, h.clock().Add(time.Minute)
	if _, err := h.ledger.UpdateStep(ctx, a); err != nil {
		t.Fatal(err)
	}
	h.advance(2 * time.Minute)
	logs := &syncBuffer{}
	bl := &barrierLedger{Ledger: h.ledger, step: "a"}
	bl.arrived.Add(n)
	orch, err := pipeline.New(pipeline.Config{Catalog: h.orch.Catalog(), Ledger: bl, Queue: h.queue, Now: h.clock,
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logs), nil)), Registry: h.reg})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { _, _ = orch.HandleStep(ctx, task.Payload, pipeline.Delivery{}) })
	}
	wg.Wait()
	if got := logs.count("lease expired; taking over"); got != 1 {
		t.Fatalf("take-over logged %d times, want 1", got)
	}
	if h.bodies["a"].runs.Load() != 1 {
		t.Fatalf("a ran %d times", h.bodies["a"].runs.Load())
	}
}

// claimLandsAsRequestDrops is a ledger on which the request that carries a
// step's claim drops while the claim is being written: the write lands, and
// then, as a client library does, the call answers the request's
// cancellation if it was made on the request's context.
type claimLandsAsRequestDrops struct {
	pipeline.Ledger
	drop func()
}

func (l *claimLandsAsRequestDrops) UpdateStep(ctx context.Context, s pipeline.StepRun) (pipeline.StepRun, error) {
	stored, err := l.Ledger.UpdateStep(context.WithoutCancel(ctx), s)
	if s.Status == pipeline.StepRunning && l.drop != nil {
		l.drop()
		l.drop = nil
		if ctx.Err() != nil {
			return pipeline.StepRun{}, ctx.Err()
		}
	}
	return stored, err
}

// A claim is written whatever becomes of its request: a claim cancelled with
// the request could land unseen and leave the step leased by an attempt that
// nobody runs until its lease expires. The claim is released at once, the
// attempt not counted (no body runs on a dead request), and the retry runs.
func TestClaimOutlivesTheRequest(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		wrapped := &claimLandsAsRequestDrops{Ledger: led}
		h := newHarnessOn(t, chainYAML, wrapped)
		start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		task := h.queue.take()[0]
		rctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wrapped.drop = cancel
		_, _ = h.orch.HandleStep(rctx, task.Payload, pipeline.Delivery{TaskName: task.Name})
		if rctx.Err() == nil {
			t.Fatal("the request was not dropped during the claim")
		}
		a := stepOf(h.run(start.Run.ID), "a")
		if a.Status == pipeline.StepRunning || !a.LeaseUntil.IsZero() {
			t.Fatalf("a is left %s with a lease until %v (attempt %d): nobody runs it until the lease expires", a.Status, a.LeaseUntil, a.Attempts)
		}
		// No body ran on the dead request: the step is released for the
		// retry at once, the attempt not counted.
		if a.Status != pipeline.StepRetrying || a.Attempts != 0 || h.bodies["a"].runs.Load() != 0 {
			t.Fatalf("a = %s attempts %d, body ran %d times; want retrying, 0, 0", a.Status, a.Attempts, h.bodies["a"].runs.Load())
		}
		h.queue.take()
		res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name})
		if err != nil || res.Outcome != pipeline.OutcomeSucceeded || res.Attempt != 1 {
			t.Fatalf("the retry: %+v, %v", res, err)
		}
	})
}

// A body whose request ends while it runs (the dispatcher's connection reset,
// not a shutdown) is not interrupted: the step's work is bounded by its
// timeout and by shutdown, not by the connection that delivered it. Before,
// the body saw "context canceled" and every reset burnt an attempt, until a
// run failed for connection resets alone.
func TestRequestEndingDuringABodyDoesNotInterruptIt(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		h := newHarnessOn(t, chainYAML, led)
		start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		task := h.queue.take()[0]
		body := h.bodies["a"]
		body.started = make(chan context.Context, 1)
		rctx, cancel := context.WithCancel(context.Background())
		body.seen = func(steps.Input) { cancel() } // the connection drops mid-body
		body.fail = func(int) error {
			// Cancelling a context cancels its descendants at once: a body
			// context derived from the request is done by now.
			return context.Cause(<-body.started)
		}
		res, err := h.orch.HandleStep(rctx, task.Payload, pipeline.Delivery{TaskName: task.Name})
		if rctx.Err() == nil {
			t.Fatal("the request context was not cancelled")
		}
		if err != nil || res.Outcome != pipeline.OutcomeSucceeded || res.Attempt != 1 {
			t.Fatalf("delivery whose request ended mid-body = %+v, %v; want the body to finish and succeed", res, err)
		}
		a := stepOf(h.run(start.Run.ID), "a")
		if a.Status != pipeline.StepSucceeded || a.Attempts != 1 {
			t.Fatalf("a = %s attempts %d %q", a.Status, a.Attempts, a.Error)
		}
	})
}
