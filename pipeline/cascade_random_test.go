package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// chaosLedger runs an operator's action (chaos) before some writes: a force
// or a resume lands between a delivery's reads and its writes.
type chaosLedger struct {
	pipeline.Ledger
	mu     sync.Mutex
	rnd    *rand.Rand
	inside bool
	chaos  func()
}

func (l *chaosLedger) maybe() {
	l.mu.Lock()
	chaos := l.chaos
	fire := !l.inside && chaos != nil && l.rnd.IntN(8) == 0
	if fire {
		l.inside = true
	}
	l.mu.Unlock()
	if fire {
		chaos()
		l.mu.Lock()
		l.inside = false
		l.mu.Unlock()
	}
}

// setChaos sets what maybe runs: the notification sender's writes call the
// ledger from its own goroutine.
func (l *chaosLedger) setChaos(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.chaos = f
}

func (l *chaosLedger) UpdateStep(ctx context.Context, s pipeline.StepRun) (pipeline.StepRun, error) {
	l.maybe()
	return l.Ledger.UpdateStep(ctx, s)
}

func (l *chaosLedger) UpdateRun(ctx context.Context, r pipeline.Run) (pipeline.Run, error) {
	l.maybe()
	return l.Ledger.UpdateRun(ctx, r)
}

// For many seeds, forces, resumes, duplicate and late deliveries and
// completions interleave on a DAG with a fan-in (root -> left, right ->
// join), some operator actions landing between a delivery's reads and
// writes. At quiescence every step consumed its predecessors' latest
// succeeded generations, every body ran at most once per generation, and the
// run's status matches its steps.
func TestCascadeRandomized(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { cascadeSeed(t, seed) })
	}
}

func cascadeSeed(t *testing.T, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, 7))
	h := newHarness(t, fanYAML)
	cl := &chaosLedger{Ledger: h.ledger, rnd: rand.New(rand.NewPCG(seed, 8))}
	h.ledger = cl
	h.deploy(fanYAML)
	names := []string{"root", "left", "right", "join"}
	var mu sync.Mutex
	ran := map[string]int{} // step/generation -> body runs
	failing := true
	for _, n := range names {
		body := h.bodies[n]
		body.seen = func(in steps.Input) {
			got, err := cl.Ledger.GetSteps(ctx, in.RunID, in.Step)
			if err != nil {
				t.Errorf("body of %s: %v", in.Step, err)
				return
			}
			mu.Lock()
			ran[fmt.Sprintf("%s/g%d", in.Step, got[0].Generation)]++
			mu.Unlock()
		}
		body.fail = func(int) error {
			mu.Lock()
			defer mu.Unlock()
			if failing && rnd.IntN(10) == 0 {
				return steps.Permanent(errors.New("random permanent failure"))
			}
			return nil
		}
	}
	start, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "fan", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	id := start.Run.ID
	operator := func() {
		mu.Lock()
		op, step := rnd.IntN(3), names[rnd.IntN(len(names))]
		mu.Unlock()
		switch op {
		case 0, 1:
			_, _ = h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: step, Force: true})
		case 2:
			_, _ = h.orch.Resume(ctx, id)
		}
	}
	cl.setChaos(operator)
	var delivered []pipeline.Task
	deliver := func(task pipeline.Task) {
		_, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name})
		if err != nil { // the queue retries it
			h.queue.mu.Lock()
			h.queue.tasks = append(h.queue.tasks, task)
			h.queue.mu.Unlock()
		}
		delivered = append(delivered, task)
	}
	for range 60 {
		mu.Lock()
		r := rnd.IntN(10)
		mu.Unlock()
		switch {
		case r < 6:
			tasks := h.queue.take()
			if len(tasks) == 0 {
				continue
			}
			mu.Lock()
			i := rnd.IntN(len(tasks))
			mu.Unlock()
			h.queue.mu.Lock()
			h.queue.tasks = append(h.queue.tasks, append(tasks[:i:i], tasks[i+1:]...)...)
			h.queue.mu.Unlock()
			deliver(tasks[i])
		case r < 8 && len(delivered) > 0: // a duplicate or late delivery
			mu.Lock()
			task := delivered[rnd.IntN(len(delivered))]
			mu.Unlock()
			_, _ = h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name})
		default:
			operator()
		}
	}
	// Quiescence: no more chaos nor failures. As in production, the sweeper
	// ticks and an operator resumes a run left with failed or skipped
	// steps; the queue delivers everything.
	cl.setChaos(nil)
	mu.Lock()
	failing = false
	mu.Unlock()
	for range 8 {
		h.drain(500)
		if r := h.run(id); r.Status == pipeline.RunSucceeded {
			break
		}
		h.advance(20 * time.Minute)
		if _, err := h.orch.Reconcile(ctx); err != nil {
			t.Fatalf("reconcile: %v", err)
		}
		h.drain(500)
		if r := h.run(id); r.Status != pipeline.RunSucceeded {
			_, _ = h.orch.Resume(ctx, id)
		}
	}
	r := h.run(id)
	if r.Status != pipeline.RunSucceeded {
		t.Fatalf("run %s %q at quiescence; steps %+v", r.Status, r.Error, r.Steps)
	}
	for _, s := range r.Steps {
		if s.Status != pipeline.StepSucceeded {
			t.Errorf("%s is %s in a succeeded run", s.Step, s.Status)
		}
	}
	checkConsumed(t, h, r)
	for k, n := range ran {
		if n > 1 {
			t.Errorf("body %s ran %d times", k, n)
		}
	}
}
