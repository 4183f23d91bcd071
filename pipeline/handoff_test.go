package pipeline_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

// TransitionWrites makes recQueue the task writer of a boltledger.Store:
// the tasks of a committed transition are queued (by name, once), to be
// delivered by hand.
func (q *recQueue) TransitionWrites(tasks []pipeline.Task, _ pipeline.Task) (func(*bbolt.Tx) error, func(bool), error) {
	write := func(*bbolt.Tx) error { return nil }
	after := func(committed bool) {
		if committed {
			for _, t := range tasks {
				_ = q.Enqueue(context.Background(), t)
			}
		}
	}
	return write, after, nil
}

// newHandOffHarness is a harness whose ledger is a boltledger.Store with
// the hand-off capability (as local mode wires it), its tasks queued in the
// harness's queue. wrap, if set, decorates the store.
func newHandOffHarness(t *testing.T, yamlText string, wrap func(*boltledger.Store) pipeline.Ledger) (*harness, *boltledger.Store) {
	t.Helper()
	db, err := boltledger.OpenDB(t.TempDir() + "/ledger.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	l, err := boltledger.New(db)
	if err != nil {
		t.Fatal(err)
	}
	q := &recQueue{}
	st := l.WithTasks(q)
	var led pipeline.Ledger = st
	if wrap != nil {
		led = wrap(st)
	}
	h := newHarnessOn(t, yamlText, led)
	h.queue = q
	h.deploy(yamlText)
	return h, st
}

// crash replaces the orchestrator with a new one over the same ledger and
// queue without closing the old one: what a process killed and restarted
// leaves (the old one's memory is gone).
func (h *harness) crash(yamlText string) {
	h.t.Helper()
	defs, err := pipeline.Parse("test.yaml", []byte(yamlText), h.reg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.orch, err = pipeline.New(pipeline.Config{
		Catalog: pipeline.NewCatalog(defs...), Ledger: h.ledger, Queue: h.queue, Notifier: h.notifiers,
		Now: h.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: h.reg,
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// deliver hands the one queued task of step to the orchestrator and
// returns its result; the other queued tasks stay queued.
func (h *harness) deliver(ctx context.Context, step string) (pipeline.StepResult, error) {
	h.t.Helper()
	var found *pipeline.Task
	var rest []pipeline.Task
	for _, t := range h.queue.take() {
		if t.Payload.Step == step && found == nil {
			found = &t
			continue
		}
		rest = append(rest, t)
	}
	h.queue.mu.Lock()
	h.queue.tasks = append(rest, h.queue.tasks...)
	h.queue.mu.Unlock()
	if found == nil {
		h.t.Fatalf("no task of %s queued", step)
	}
	res, err := h.orch.HandleStep(ctx, found.Payload, pipeline.Delivery{TaskName: found.Name})
	if err != nil {
		// The queue delivers it again.
		h.queue.mu.Lock()
		h.queue.tasks = append(h.queue.tasks, *found)
		h.queue.mu.Unlock()
	}
	return res, err
}

// startChain starts the chain a -> b -> c and delivers a: its transition
// claims b (handed off).
func startChain(t *testing.T, h *harness) string {
	t.Helper()
	res, err := h.orch.Start(t.Context(), pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.deliver(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	b := stepOf(h.run(res.Run.ID), "b")
	if b.Status != pipeline.StepRunning || b.Attempts != 1 || b.Inputs["a"] != 1 {
		t.Fatalf("after a's transition b is %s, attempt %d, inputs %v; want running, attempt 1, consumed a@1 (claimed by the hand-off)", b.Status, b.Attempts, b.Inputs)
	}
	return res.Run.ID
}

func TestHandOffSuccessorRunsWithoutAClaimOfItsOwn(t *testing.T) {
	h, st := newHandOffHarness(t, chainYAML, nil)
	id := startChain(t, h)
	commits := st.Committer().Commits()
	res, err := h.deliver(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != pipeline.OutcomeSucceeded || res.Attempt != 1 {
		t.Fatalf("b: %s attempt %d, want succeeded on attempt 1", res.Outcome, res.Attempt)
	}
	if n := st.Committer().Commits() - commits; n != 1 {
		t.Fatalf("b's delivery made %d commits, want 1 (its transition, which claims c)", n)
	}
	if got := h.bodies["b"].runs.Load(); got != 1 {
		t.Fatalf("b's body ran %d times", got)
	}
	if _, err := h.deliver(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	r := h.run(id)
	if r.Status != pipeline.RunSucceeded {
		t.Fatalf("run %s", r.Status)
	}
	for _, s := range r.Steps {
		if s.Attempts != 1 {
			t.Errorf("%s: %d attempts, want 1", s.Step, s.Attempts)
		}
	}
}

// A duplicate of the successor's delivery, after its reservation was
// taken, sees the lease held like any other claim.
func TestHandOffDuplicateDeliverySeesTheLease(t *testing.T) {
	h, _ := newHandOffHarness(t, chainYAML, nil)
	id := startChain(t, h)
	b := h.bodies["b"]
	b.gate = make(chan struct{})
	started := make(chan context.Context, 1)
	b.started = started
	done := make(chan error, 1)
	task := h.queue.take()[0]
	go func() {
		_, err := h.orch.HandleStep(context.Background(), task.Payload, pipeline.Delivery{TaskName: task.Name})
		done <- err
	}()
	<-started
	if _, err := h.orch.HandleStep(t.Context(), task.Payload, pipeline.Delivery{TaskName: task.Name}); !errors.Is(err, pipeline.ErrLeaseHeld) {
		t.Fatalf("duplicate while b runs: %v, want ErrLeaseHeld", err)
	}
	close(b.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := b.runs.Load(); got != 1 {
		t.Fatalf("b ran %d times", got)
	}
	if s := stepOf(h.run(id), "b"); s.Status != pipeline.StepSucceeded || s.Attempts != 1 {
		t.Fatalf("b %s attempt %d", s.Status, s.Attempts)
	}
}

func TestHandOffReservationGivenBackAtClose(t *testing.T) {
	h, _ := newHandOffHarness(t, chainYAML, nil)
	id := startChain(t, h)
	h.deploy(chainYAML) // closes the orchestrator: a graceful shutdown and restart
	b := stepOf(h.run(id), "b")
	if b.Status != pipeline.StepRetrying || b.Attempts != 0 || !b.LeaseUntil.IsZero() {
		t.Fatalf("after Close b is %s, attempt %d, lease %s; want retrying, 0 attempts, no lease (given back)", b.Status, b.Attempts, b.LeaseUntil)
	}
	res, err := h.deliver(t.Context(), "b")
	if err != nil {
		t.Fatalf("b after the restart: %v (it must claim at once)", err)
	}
	if res.Attempt != 1 || h.bodies["b"].runs.Load() != 1 {
		t.Fatalf("b: attempt %d, ran %d times; want attempt 1, once", res.Attempt, h.bodies["b"].runs.Load())
	}
}

func TestHandOffReservationLostAtCrash(t *testing.T) {
	h, _ := newHandOffHarness(t, chainYAML, nil)
	id := startChain(t, h)
	h.crash(chainYAML)
	// The restarted process does not hold b's claim: a lease conflict.
	if _, err := h.deliver(t.Context(), "b"); !errors.Is(err, pipeline.ErrLeaseHeld) {
		t.Fatalf("b after a crash, lease running: %v, want ErrLeaseHeld", err)
	}
	if n := h.bodies["b"].runs.Load(); n != 0 {
		t.Fatalf("b ran %d times under a lease it does not hold", n)
	}
	h.advance(pipeline.DefaultTimeout + time.Hour) // past the lease
	res, err := h.deliver(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != pipeline.OutcomeSucceeded || res.Attempt != 2 {
		t.Fatalf("b: %s attempt %d, want succeeded on attempt 2 (the handed-off attempt is lost with the process)", res.Outcome, res.Attempt)
	}
	if _, err := h.deliver(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	if r := h.run(id); r.Status != pipeline.RunSucceeded || h.bodies["b"].runs.Load() != 1 {
		t.Fatalf("run %s, b ran %d times", r.Status, h.bodies["b"].runs.Load())
	}
}

// cancelAfterRead is the store of a harness whose request ends right after
// the delivery of b read b, claimed (the delivery's caller went away).
type cancelAfterRead struct {
	*boltledger.Store
	cancel context.CancelFunc
}

func (c cancelAfterRead) GetSteps(ctx context.Context, runID string, steps ...string) ([]pipeline.StepRun, error) {
	got, err := c.Store.GetSteps(ctx, runID, steps...)
	if err == nil && len(got) > 1 && got[0].Step == "b" && got[0].Status == pipeline.StepRunning {
		c.cancel() // the delivery's own read of b (with its predecessor)
	}
	return got, err
}

func TestHandOffRequestEndedBeforeBody(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h, st := newHandOffHarness(t, chainYAML, func(st *boltledger.Store) pipeline.Ledger { return cancelAfterRead{st, cancel} })
	id := startChain(t, h)
	_, err := h.deliver(ctx, "b")
	if err == nil {
		t.Fatal("b's delivery whose request ended before the body answered success")
	}
	if n := h.bodies["b"].runs.Load(); n != 0 {
		t.Fatalf("b ran %d times on an ended request", n)
	}
	b, err2 := st.GetSteps(context.Background(), id, "b")
	err = err2
	if err != nil {
		t.Fatal(err)
	}
	if b[0].Status != pipeline.StepRetrying || b[0].Attempts != 0 || !b[0].LeaseUntil.IsZero() {
		t.Fatalf("b is %s, attempt %d, lease %s; want released: retrying, 0 attempts, no lease", b[0].Status, b[0].Attempts, b[0].LeaseUntil)
	}
	res, err := h.deliver(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempt != 1 {
		t.Fatalf("b's retry ran attempt %d, want 1", res.Attempt)
	}
}

func TestHandOffCancelledBeforeDelivery(t *testing.T) {
	h, _ := newHandOffHarness(t, chainYAML, nil)
	id := startChain(t, h)
	if _, err := h.orch.Cancel(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	b := stepOf(h.run(id), "b")
	if b.Status != pipeline.StepCancelled || b.Attempts != 0 {
		t.Fatalf("b after the cancel: %s, attempt %d; want cancelled, 0 attempts", b.Status, b.Attempts)
	}
	res, err := h.deliver(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != pipeline.OutcomeNotRunnable || h.bodies["b"].runs.Load() != 0 {
		t.Fatalf("b delivered after the cancel: %s, ran %d times", res.Outcome, h.bodies["b"].runs.Load())
	}
	if r := h.run(id); r.Status != pipeline.RunCancelled {
		t.Fatalf("run %s", r.Status)
	}
}

func TestHandOffLateDeliveryClaimsAnew(t *testing.T) {
	h, st := newHandOffHarness(t, chainYAML, nil)
	id := startChain(t, h)
	h.advance(pipeline.DefaultTimeout + time.Hour) // the delivery comes after the lease
	commits := st.Committer().Commits()
	res, err := h.deliver(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Committer().Commits() - commits; n != 2 {
		t.Fatalf("late delivery of b: %d commits, want 2 (a claim of its own, then its transition)", n)
	}
	if res.Outcome != pipeline.OutcomeSucceeded || res.Attempt != 1 {
		t.Fatalf("b: %s attempt %d, want succeeded on attempt 1 (its own handed-off attempt never ran)", res.Outcome, res.Attempt)
	}
	if _, err := h.deliver(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	if r := h.run(id); r.Status != pipeline.RunSucceeded {
		t.Fatalf("run %s", r.Status)
	}
}

// A wrapped ledger (fault injection) hides HandOff: every step claims on
// its own delivery.
func TestHandOffNotUsedThroughAWrappedLedger(t *testing.T) {
	h, _ := newHandOffHarness(t, chainYAML, func(st *boltledger.Store) pipeline.Ledger { return struct{ pipeline.Ledger }{st} })
	res, err := h.orch.Start(t.Context(), pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.deliver(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if b := stepOf(h.run(res.Run.ID), "b"); b.Status != pipeline.StepPending {
		t.Fatalf("b is %s after a, want pending (no hand-off)", b.Status)
	}
}
