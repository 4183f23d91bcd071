package pipeline_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// gateNotifier holds every final notification until released (as an
// unreachable Discord would), honouring its context.
type gateNotifier struct {
	entered   chan struct{} // receives once per final call that started waiting
	release   chan struct{} // closed to let the calls through
	abandoned atomic.Int32  // calls whose context ended while they waited
	once      sync.Once
}

func newGate() *gateNotifier {
	return &gateNotifier{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gateNotifier) Notify(ctx context.Context, e pipeline.Event) error {
	if e.Step != nil || !e.Run.Status.Terminal() {
		return nil
	}
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		g.abandoned.Add(1)
		return ctx.Err()
	}
}

func (g *gateNotifier) open() { g.once.Do(func() { close(g.release) }) }

// Invariant 6: a notifier that hangs never holds up a step. The last step's
// delivery answers, with the run recorded finished, while the final
// notification is still waiting; once the notifier lets it through, it is
// recorded as sent.
func TestHangingNotifierNeverHoldsUpTheLastStep(t *testing.T) {
	gate := newGate()
	t.Cleanup(gate.open)
	h := newHarness(t, chainYAML, gate)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"a", "b", "c"} {
		tasks := h.queue.take()
		if len(tasks) != 1 || tasks[0].Payload.Step != step {
			t.Fatalf("queue holds %+v, want the task of %s", tasks, step)
		}
		res, err := h.orch.HandleStep(ctx, tasks[0].Payload, pipeline.Delivery{TaskName: tasks[0].Name})
		if err != nil || res.Outcome != pipeline.OutcomeSucceeded {
			t.Fatalf("%s: %+v %v", step, res, err)
		}
	}
	// The handler has answered: the run is recorded finished and its final
	// notification is owed, while the notifier still holds it.
	r, err := h.ledger.GetRun(ctx, "chain@2026-11-23")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != pipeline.RunSucceeded || r.Notify != pipeline.NotifyPending {
		t.Fatalf("after the last step: run %s, notify %q; want succeeded, pending", r.Status, r.Notify)
	}
	if n := gate.abandoned.Load(); n != 0 {
		t.Fatalf("the final notification was given up %d time(s) while the step waited on it", n)
	}
	<-gate.entered // the notifier has the final notification
	// Duplicate deliveries of the last step, once the ending instance's
	// grace is over, find the final owed while it is being sent: it is not
	// sent again.
	h.advance(time.Minute)
	last := pipeline.TaskPayload{RunID: "chain@2026-11-23", Step: "c", Generation: 1, Date: "2026-11-23"}
	for range 3 {
		if res, err := h.orch.HandleStep(ctx, last, pipeline.Delivery{}); err != nil || res.Outcome != pipeline.OutcomeAlreadyDone {
			t.Fatalf("duplicate: %+v %v", res, err)
		}
	}
	gate.open()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := h.ledger.GetRun(ctx, "chain@2026-11-23")
		if err != nil {
			t.Fatal(err)
		}
		if r.Notify == pipeline.NotifyDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("final notification not recorded as sent (notify %q)", r.Notify)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := h.events.count(pipeline.EventRunSucceeded); n != 1 {
		t.Fatalf("run_succeeded sent %d times, want 1", n)
	}
}

// A final notification still held by the notifier when the orchestrator
// closes (the process exits) is given up and stays owed in the ledger; the
// sweeper sends it once the ending instance's grace is over.
func TestFinalNotificationGivenUpAtCloseStaysOwedForTheSweeper(t *testing.T) {
	gate := newGate()
	t.Cleanup(gate.open)
	h := newHarness(t, chainYAML, gate)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for _, task := range h.queue.take() {
			if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	<-gate.entered
	gone, cancel := context.WithCancel(ctx)
	cancel() // no grace left: what is in flight is given up at once
	if err := h.orch.Close(gone); err == nil {
		t.Fatal("Close reported everything sent while the notifier held the final notification")
	}
	// A closed orchestrator takes no more notifications; the run stays owed.
	deadline := time.Now().Add(10 * time.Second)
	for gate.abandoned.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the notifier call in flight was not ended by Close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r, err := h.ledger.GetRun(ctx, "chain@2026-11-23")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != pipeline.RunSucceeded || r.Notify != pipeline.NotifyPending {
		t.Fatalf("after close: run %s, notify %q; want succeeded, pending", r.Status, r.Notify)
	}
	// The next instance's sweeper sends it, after the grace.
	gate.open()
	h.deploy(chainYAML)
	h.advance(time.Minute)
	rep, err := h.orch.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Notified) != 1 {
		t.Fatalf("sweeper notified %v, want the run", rep.Notified)
	}
	if got := h.run("chain@2026-11-23"); got.Notify != pipeline.NotifyDone {
		t.Fatalf("notify %q after the sweeper, want sent", got.Notify)
	}
}
