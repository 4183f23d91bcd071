package pipeline_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// instance is another service instance over the harness's ledger and queue,
// whose clock is off by skew.
func (h *harness) instance(skew time.Duration) *pipeline.Orchestrator {
	h.t.Helper()
	o, err := pipeline.New(pipeline.Config{
		Catalog: h.orch.Catalog(), Ledger: h.ledger, Queue: h.queue, Notifier: h.notifiers,
		Now: func() time.Time { return h.clock().Add(skew) }, Registry: h.reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return o
}

// checkConsumed fails unless every succeeded step consumed its
// predecessors' latest generations.
func checkConsumed(t *testing.T, h *harness, r pipeline.Run) {
	t.Helper()
	def := h.orch.Catalog().Get(r.Pipeline)
	for _, s := range r.Steps {
		for _, a := range def.Step(s.Step).After {
			if p := stepOf(r, a); s.Status == pipeline.StepSucceeded && s.Inputs[a] != p.Generation {
				t.Errorf("%s consumed %s generation %d; its latest is %d", s.Step, a, s.Inputs[a], p.Generation)
			}
		}
	}
}

// Interleaving 1: clock skew between instances never re-runs a succeeded
// step. b is forced and re-runs on instance X; c re-runs on instance Y whose
// clock is an hour behind; a duplicate of b's generation-2 task then finds c
// up to date (it consumed b's generation 2), whatever the clocks say.
func TestClockSkewDoesNotRerunASucceededStep(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		h := newHarnessOn(t, chainYAML, led)
		x, y := h.instance(time.Hour), h.instance(0)
		id := startAndDrain(t, h, "2026-11-23")
		if _, err := x.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "b", Force: true}); err != nil {
			t.Fatal(err)
		}
		bTask := h.queue.take()[0]
		if res, err := x.HandleStep(ctx, bTask.Payload, pipeline.Delivery{}); err != nil || res.Outcome != pipeline.OutcomeSucceeded {
			t.Fatalf("b on X = %+v, %v", res, err)
		}
		cTask := h.queue.take()[0]
		if res, err := y.HandleStep(ctx, cTask.Payload, pipeline.Delivery{}); err != nil || res.Outcome != pipeline.OutcomeSucceeded {
			t.Fatalf("c on Y = %+v, %v", res, err)
		}
		r := h.run(id)
		if !stepOf(r, "c").FinishedAt.Before(stepOf(r, "b").FinishedAt) {
			t.Fatal("setup: c's finish should read earlier than b's (Y's clock is behind)")
		}
		for _, o := range []*pipeline.Orchestrator{x, y} { // duplicates of b's generation 2
			if res, err := o.HandleStep(ctx, bTask.Payload, pipeline.Delivery{}); err != nil || res.Outcome != pipeline.OutcomeAlreadyDone {
				t.Fatalf("duplicate of b = %+v, %v", res, err)
			}
		}
		h.drain(20)
		if c := h.bodies["c"].runs.Load(); c != 2 {
			t.Fatalf("c ran %d times, want 2", c)
		}
		r = h.run(id)
		if r.Status != pipeline.RunSucceeded || stepOf(r, "c").Generation != 2 {
			t.Fatalf("run %s, c generation %d", r.Status, stepOf(r, "c").Generation)
		}
		checkConsumed(t, h, r)
	})
}

// Interleaving 2: forcing a predecessor while its successor runs does not
// lose the cascade. b runs on a's generation-1 output when an operator forces
// a; b finishes on that stale input; it then runs again on a's generation 2,
// and so does c; the run ends succeeded on the latest outputs.
func TestForcingAPredecessorWhileItsSuccessorRunsKeepsTheCascade(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		h := newHarnessOn(t, chainYAML, led)
		start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		id := start.Run.ID
		deliverOne(t, h, "a")
		bTask := h.queue.take()[0]
		b := h.bodies["b"]
		b.gate, b.started = make(chan struct{}), make(chan context.Context, 1)
		done := make(chan error, 1)
		go func() {
			_, err := h.orch.HandleStep(ctx, bTask.Payload, pipeline.Delivery{})
			done <- err
		}()
		<-b.started // b runs on a's generation 1
		if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "a", Force: true}); err != nil {
			t.Fatal(err)
		}
		deliverOne(t, h, "a") // a's generation 2 succeeds while b runs
		b.started = nil
		close(b.gate)
		if err := <-done; err != nil {
			t.Fatalf("b's first run: %v", err)
		}
		h.drain(50)
		r := h.run(id)
		if r.Status != pipeline.RunSucceeded {
			t.Fatalf("run %s %q", r.Status, r.Error)
		}
		// b ran again on a's new output; c ran once per generation it had
		// (here once: its first run came after b's re-run).
		if a, b, c := h.bodies["a"].runs.Load(), h.bodies["b"].runs.Load(), h.bodies["c"].runs.Load(); a != 2 || b != 2 || int64(stepOf(r, "c").Generation) != c {
			t.Fatalf("a ran %d, b %d, c %d (c generation %d); want a and b twice, c once per generation", a, b, c, stepOf(r, "c").Generation)
		}
		checkConsumed(t, h, r)
	})
}

// hookLedger calls afterGetRun (once armed) after a GetRun that read a run
// whose steps all succeeded: between a finish's read and its write.
type hookLedger struct {
	pipeline.Ledger
	armed       atomic.Bool
	afterGetRun func()
}

func (l *hookLedger) GetRun(ctx context.Context, id string) (pipeline.Run, error) {
	r, err := l.Ledger.GetRun(ctx, id)
	if err == nil && r.Status == pipeline.RunRunning {
		all := true
		for _, s := range r.Steps {
			all = all && s.Status == pipeline.StepSucceeded
		}
		if all && l.armed.CompareAndSwap(true, false) {
			l.afterGetRun()
		}
	}
	return r, err
}

// Interleaving 3: a finishing run races an operator's force. The finish
// reads "all succeeded"; a force of a lands before the finish writes; the
// finish, decided again on fresh step states, does not happen; a's re-run
// fails for good, and the run ends failed with its failure notification.
func TestAForceDuringAFinishWins(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		hl := &hookLedger{Ledger: led}
		h := newHarnessOn(t, chainYAML, hl)
		var id string
		hl.afterGetRun = func() {
			if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "a", Force: true}); err != nil {
				t.Errorf("force during the finish: %v", err)
			}
		}
		h.bodies["a"].fail = func(int) error {
			if h.bodies["a"].runs.Load() > 1 {
				return steps.Permanent(errors.New("the re-run fails"))
			}
			return nil
		}
		start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		id = start.Run.ID
		deliverOne(t, h, "a")
		deliverOne(t, h, "b")
		hl.armed.Store(true)
		deliverOne(t, h, "c") // its finish reads; the force lands; then the finish writes
		if hl.armed.Load() {
			t.Fatal("setup: the hook did not fire")
		}
		h.drain(50)
		r := h.run(id)
		if r.Status != pipeline.RunFailed || stepOf(r, "a").Status != pipeline.StepFailed {
			t.Fatalf("run %s %q, a %s", r.Status, r.Error, stepOf(r, "a").Status)
		}
		if n := h.events.count(pipeline.EventRunFailed); n != 1 {
			t.Fatalf("%d run-failed notifications, want 1", n)
		}
		if n := h.events.count(pipeline.EventRunSucceeded); n != 0 {
			t.Fatalf("%d run-succeeded notifications, want 0", n)
		}
	})
}
