package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
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

// The check that comes at the step's timeout (its interval cut short to
// it) looks at the work once more: work that finished since the previous
// check succeeds, rather than failing the run and being "cancelled" after
// it completed. Work still going on at that look times out as before.
func TestAsyncLastCheckAtTheTimeoutLooks(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		// Checks at 1h30, 3h, then 4h (the timeout): the third finds it done.
		j := &fakeJob{polls: 3, after: 90 * time.Minute}
		withJob(t, h, waitsYAML, j)
		id, c1 := startWaiting(t, h)
		h.queue.tasks = append(h.queue.tasks, c1)
		h.deliverTimed(20)
		r := h.run(id)
		job := stepOf(r, "job")
		if r.Status != pipeline.RunSucceeded || job.Status != pipeline.StepSucceeded {
			t.Fatalf("run %s (%s), job %+v", r.Status, r.Error, job)
		}
		if waited := job.FinishedAt.Sub(job.WaitingSince); waited < 4*time.Hour || waited > 4*time.Hour+time.Minute {
			t.Fatalf("succeeded after waiting %s, want at the 4h timeout", waited)
		}
		if s, c, x := j.counts(); s != 1 || c != 3 || x != 0 {
			t.Fatalf("starts %d checks %d cancels %d, want 1 3 0", s, c, x)
		}
	})
}

// A check failing transiently at the timeout does not extend the wait: the
// step times out, saying what the last check said, and the work is
// cancelled.
func TestAsyncLastCheckFailingAtTheTimeoutTimesOut(t *testing.T) {
	h := newHarness(t, chainYAML)
	j := &fakeJob{polls: 1000, after: 3 * time.Hour, checkErr: func(n int) error {
		if n >= 2 {
			return steps.RetryAfter(errors.New("503 from the jobs API"), time.Hour)
		}
		return nil
	}}
	withJob(t, h, waitsYAML, j)
	id, c1 := startWaiting(t, h)
	h.queue.tasks = append(h.queue.tasks, c1)
	h.deliverTimed(10)
	r := h.run(id)
	job := stepOf(r, "job")
	if r.Status != pipeline.RunFailed || job.Status != pipeline.StepFailed ||
		!strings.Contains(job.Error, "timeout") || !strings.Contains(job.Error, "last error: check failed: 503") {
		t.Fatalf("run %s, job %+v", r.Status, job)
	}
	if s, c, x := j.counts(); s != 1 || c != 2 || x != 1 {
		t.Fatalf("starts %d checks %d cancels %d, want 1 2 1", s, c, x)
	}
}

// keepJob answers its pending checks without a state (nothing changed);
// every check must still be given the state its start returned.
type keepJob struct {
	fakeJob
}

func (j *keepJob) Check(_ context.Context, _ steps.Input, state json.RawMessage) (steps.Poll, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.checks++
	j.states = append(j.states, string(state))
	if j.checks < j.polls {
		return steps.Poll{After: j.after}, nil
	}
	return steps.Poll{Done: true, Output: state}, nil
}

// A check answering pending without a state keeps the recorded one: the
// next check (and a cancel) still knows the remote work.
func TestAsyncPendingCheckWithoutStateKeepsIt(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		j := &keepJob{fakeJob{polls: 3, after: time.Minute}}
		h.reg.Register("job", func(map[string]any) (steps.Step, error) { return j, nil })
		h.deploy(waitsYAML)
		id, c1 := startWaiting(t, h)
		want := string(stepOf(h.run(id), "job").AsyncState)
		h.queue.tasks = append(h.queue.tasks, c1)
		h.deliverTimed(20)
		r := h.run(id)
		if r.Status != pipeline.RunSucceeded {
			t.Fatalf("run %s (%s)", r.Status, r.Error)
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		if len(j.states) != 3 || j.states[1] != want || j.states[2] != want {
			t.Fatalf("states given to Check: %q, want %q each time", j.states, want)
		}
	})
}

// An asynchronous step's timeout above its pipeline's max_run_duration can
// never be reached (the sweeper fails the run, stopping the wait, first):
// validate refuses it, naming both and what to change, and accepts it
// once max_run_duration covers it.
func TestAsyncTimeoutAboveMaxRunDurationIsRefused(t *testing.T) {
	reg := steps.NewRegistry()
	src := func(head, timeout string) []byte {
		return []byte("name: w\ntime_zone: UTC\n" + head + "steps:\n  - name: job\n    kind: http\n    timeout: " + timeout +
			"\n    http: {url: \"https://jobs.example/start\", async: true}\n")
	}
	_, err := pipeline.Parse("w.yaml", src("", "48h"), reg)
	if err == nil || !strings.Contains(err.Error(), "max_run_duration 24h0m0s") || !strings.Contains(err.Error(), "timeout 48h0m0s") {
		t.Fatalf("48h wait under the default max_run_duration: %v, want it refused naming both", err)
	}
	if _, err := pipeline.Parse("w.yaml", src("max_run_duration: 72h\n", "48h"), reg); err != nil {
		t.Fatalf("48h wait under max_run_duration 72h: %v", err)
	}
	if _, err := pipeline.Parse("w.yaml", src("", "24h"), reg); err != nil {
		t.Fatalf("a wait as long as max_run_duration: %v", err)
	}
}

// A check that fails for good does not know the remote work has stopped
// (the kind may have lost the right to read it, or its state is gone): the
// step fails and the work is cancelled where the kind can, so that a
// re-run does not run beside it. (Cancelling work that already failed is a
// no-op for the built-in kinds.)
func TestAsyncPermanentCheckFailureCancelsTheWork(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		j := &fakeJob{polls: 5, after: time.Minute, checkErr: func(n int) error {
			return steps.Permanent(errors.New("403: the service account may no longer read the job"))
		}}
		withJob(t, h, waitsYAML, j)
		id, c1 := startWaiting(t, h)
		h.queue.tasks = append(h.queue.tasks, c1)
		h.deliverTimed(10)
		r := h.run(id)
		if job := stepOf(r, "job"); r.Status != pipeline.RunFailed || job.Status != pipeline.StepFailed || !strings.Contains(job.Error, "403") {
			t.Fatalf("run %s, job %+v", r.Status, job)
		}
		if s, c, x := j.counts(); s != 1 || c != 1 || x != 1 {
			t.Fatalf("starts %d checks %d cancels %d, want 1 1 1", s, c, x)
		}
	})
}

// A predecessor re-run (a new generation) while a step waits supersedes
// the input the wait started on: when that wait ends, the step runs again
// on the new input at once (as a synchronous step's recheck makes it), its
// successors never starting on the superseded output, and the run
// completes without the sweeper.
func TestAsyncWaitEndingOnASupersededInputRunsAgain(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		j := &fakeJob{polls: 2, after: time.Minute}
		withJob(t, h, waitsYAML, j)
		id, c1 := startWaiting(t, h)
		if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "a", Force: true}); err != nil {
			t.Fatal(err)
		}
		h.queue.tasks = append(h.queue.tasks, c1)
		h.deliverTimed(30)
		r := h.run(id)
		job := stepOf(r, "job")
		if r.Status != pipeline.RunSucceeded || job.Generation != 2 || job.Inputs["a"] != 2 {
			t.Fatalf("run %s (%s), job %+v", r.Status, r.Error, job)
		}
		if s, _, _ := j.counts(); s != 2 {
			t.Fatalf("job started %d times, want 2 (once per input)", s)
		}
		if n := h.bodies["c"].runs.Load(); n != 1 {
			t.Fatalf("c ran %d times, want once (never on the superseded output)", n)
		}
	})
}

// gatedJob's checks wait at the gate until the test opens it.
type gatedJob struct {
	fakeJob
	entered chan struct{}
	gate    chan struct{}
}

func (j *gatedJob) Check(ctx context.Context, in steps.Input, state json.RawMessage) (steps.Poll, error) {
	j.entered <- struct{}{}
	<-j.gate
	return j.fakeJob.Check(ctx, in, state)
}

// Cancelling the run while a check is in flight leaves that check's result
// standing, but the remote work is cancelled by the next check queued at
// once, not after the check interval (an hour here, hours in practice).
func TestAsyncCancelDuringACheckStopsTheWorkPromptly(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		j := &gatedJob{fakeJob: fakeJob{polls: 100, after: time.Hour}, entered: make(chan struct{}), gate: make(chan struct{})}
		h.reg.Register("job", func(map[string]any) (steps.Step, error) { return j, nil })
		h.deploy(waitsYAML)
		id, c1 := startWaiting(t, h)
		h.advance(c1.Delay)
		done := make(chan error, 1)
		go func() {
			_, err := h.orch.HandleStep(ctx, c1.Payload, pipeline.Delivery{TaskName: c1.Name})
			done <- err
		}()
		<-j.entered // check 1 holds its lease
		if _, err := h.orch.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		close(j.gate)
		if err := <-done; err != nil {
			t.Fatalf("check 1: %v", err)
		}
		next := h.queue.take()
		if len(next) != 1 || next[0].Payload.Check != 2 || next[0].Delay != 0 {
			t.Fatalf("queued after the cancel: %+v, want check 2 at once", next)
		}
		res, err := h.orch.HandleStep(ctx, next[0].Payload, pipeline.Delivery{TaskName: next[0].Name})
		if err != nil || res.Outcome != pipeline.OutcomeNotRunnable {
			t.Fatalf("check 2: %+v, %v", res, err)
		}
		if _, c, x := j.counts(); c != 1 || x != 1 {
			t.Fatalf("checks %d cancels %d, want 1 1", c, x)
		}
		if job := stepOf(h.run(id), "job"); job.Status != pipeline.StepCancelled {
			t.Fatalf("job %+v", job)
		}
	})
}
