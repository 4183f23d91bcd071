package pipeline_test

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/cloudrunjob"
	"github.com/pipelinehq/pipeline/steps/cloudrunjob/runtest"
)

// cloudRunHarness registers the cloudrun.job kind on h, its clients on the
// stand-in srv, and deploys the waits pipeline whose middle step runs the
// stand-in's job named for the ledger (so that the ledgers' runs do not
// adopt each other's executions), ending as o says. It returns the job's
// full name.
func cloudRunHarness(t *testing.T, h *harness, srv *runtest.Server, o runtest.Outcome, timeout string) string {
	t.Helper()
	job := "load-" + strings.ToLower(path.Base(t.Name()))
	name := srv.AddJob("acme", "europe-west1", job, o)
	clients := cloudrunjob.NewClients(srv.ClientOptions()...)
	t.Cleanup(func() { _ = clients.Close() })
	cloudrunjob.Register(h.reg, clients)
	h.deploy(`
name: waits
time_zone: UTC
steps:
  - {name: a, kind: a, after: []}
  - name: job
    kind: cloudrun.job
    timeout: ` + timeout + `
    max_attempts: 3
    cloudrun.job:
      project: acme
      region: europe-west1
      job: ` + job + `
      args: ["--date={{.Date}}"]
      check_interval: 30m
  - {name: c, kind: c}
`)
	return name
}

// runsOf counts the RunJob calls for job.
func runsOf(srv *runtest.Server, job string) int {
	n := 0
	for _, r := range srv.Runs() {
		if r.GetName() == job {
			n++
		}
	}
	return n
}

// deliverShort delivers the queued tasks as deliverTimed does, failing the
// test if a task of the asynchronous step may hold a request longer than
// an asynchronous request's bound.
func (h *harness) deliverShort(limit int) {
	h.t.Helper()
	for n := 0; n < limit; n++ {
		tasks := h.queue.take()
		if len(tasks) == 0 {
			return
		}
		t := tasks[0]
		h.queue.tasks = append(h.queue.tasks, tasks[1:]...)
		if t.Payload.Step == "job" && t.Deadline > pipeline.AsyncRequestTimeout+time.Minute {
			h.t.Fatalf("task %s may take %s", t.Name, t.Deadline)
		}
		h.advance(t.Delay)
		if _, err := h.orch.HandleStep(ctx, t.Payload, pipeline.Delivery{TaskName: t.Name}); err != nil {
			h.t.Fatalf("delivery of %s: %v", t.Name, err)
		}
	}
	h.t.Fatalf("deliverShort: tasks left after %d deliveries", limit)
}

// A pipeline whose middle step waits 3 hours (fake clock) on a Cloud Run
// Job completes on both ledgers, every request short, the job run once,
// with the execution's counts and logs link as the step's output.
func TestAsyncCloudRunJobThroughTheOrchestrator(t *testing.T) {
	srv := runtest.Start(t)
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		job := cloudRunHarness(t, h, srv, runtest.Outcome{Gets: 5}, "6h")
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		h.deliverShort(30)
		r := h.run(res.Run.ID)
		step := stepOf(r, "job")
		if r.Status != pipeline.RunSucceeded || step.Status != pipeline.StepSucceeded || step.Attempts != 1 {
			t.Fatalf("run %s (%s), job %+v", r.Status, r.Error, step)
		}
		if waited := step.FinishedAt.Sub(step.WaitingSince); waited < 3*time.Hour || step.Check != 6 {
			t.Fatalf("waited %s over %d checks, want 3h over 6", waited, step.Check)
		}
		if n := runsOf(srv, job); n != 1 {
			t.Fatalf("%d RunJob calls, want 1", n)
		}
		var ex string
		for _, e := range srv.Executions() {
			if strings.HasPrefix(e.GetName(), job+"/") {
				ex = e.GetName()
				if step.Link != e.GetLogUri() {
					t.Fatalf("link %q, want the logs %q", step.Link, e.GetLogUri())
				}
			}
		}
		var out map[string]any
		if err := json.Unmarshal(step.Output, &out); err != nil || out["execution"] != ex || out["succeeded"] != 1.0 || out["failed"] != 0.0 {
			t.Fatalf("output %s (%v)", step.Output, err)
		}
	})
}

// Cancelling the run while the step waits cancels the execution; the
// pending check then changes nothing.
func TestAsyncCloudRunJobCancelWhileWaiting(t *testing.T) {
	srv := runtest.Start(t)
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		job := cloudRunHarness(t, h, srv, runtest.Outcome{Gets: 5}, "6h")
		id, check := startWaiting(t, h)
		waiting := stepOf(h.run(id), "job")
		var state struct{ Execution string }
		if err := json.Unmarshal(waiting.AsyncState, &state); err != nil || !strings.HasPrefix(state.Execution, job+"/executions/") {
			t.Fatalf("waiting on %s (%v)", waiting.AsyncState, err)
		}
		if _, err := h.orch.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		cancelled := false
		for _, name := range srv.Cancels() {
			cancelled = cancelled || name == state.Execution
		}
		if !cancelled {
			t.Fatalf("cancels %v, want %s", srv.Cancels(), state.Execution)
		}
		h.advance(30 * time.Minute)
		res, err := h.orch.HandleStep(ctx, check.Payload, pipeline.Delivery{TaskName: check.Name})
		if err != nil || res.Outcome != pipeline.OutcomeNotRunnable {
			t.Fatalf("check after cancel: %+v, %v", res, err)
		}
		if r := h.run(id); r.Status != pipeline.RunCancelled || stepOf(r, "job").Status != pipeline.StepCancelled || runsOf(srv, job) != 1 {
			t.Fatalf("run %s, job %+v, %d runs", r.Status, stepOf(r, "job"), runsOf(srv, job))
		}
	})
}

// A job that outlasts the step's timeout fails the step and is cancelled.
func TestAsyncCloudRunJobTimeoutCancelsTheExecution(t *testing.T) {
	srv := runtest.Start(t)
	h := newHarness(t, chainYAML)
	job := cloudRunHarness(t, h, srv, runtest.Outcome{Gets: 1000}, "2h")
	res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	h.deliverShort(30)
	r := h.run(res.Run.ID)
	if step := stepOf(r, "job"); r.Status != pipeline.RunFailed || step.Status != pipeline.StepFailed || !strings.Contains(step.Error, "timeout") {
		t.Fatalf("run %s, job %+v", r.Status, step)
	}
	exs := srv.Executions()
	if len(exs) != 1 || len(srv.Cancels()) != 1 || srv.Cancels()[0] != exs[0].GetName() || runsOf(srv, job) != 1 {
		t.Fatalf("cancels %v of executions %d", srv.Cancels(), len(exs))
	}
}

// RunJob that started the execution but whose reply was lost fails the
// attempt transiently; the retry adopts the execution instead of running
// the job again.
func TestAsyncCloudRunJobLostStartReplyIsAdopted(t *testing.T) {
	srv := runtest.Start(t)
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		job := cloudRunHarness(t, h, srv, runtest.Outcome{Gets: 1}, "6h")
		srv.LoseRunReply(len(srv.Runs())+1, status.Error(codes.Unavailable, "connection reset"))
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		errs := h.drainTimed(30)
		r := h.run(res.Run.ID)
		step := stepOf(r, "job")
		if r.Status != pipeline.RunSucceeded || step.Attempts != 2 || errs == 0 {
			t.Fatalf("run %s (%s), job %+v, %d failed deliveries", r.Status, r.Error, step, errs)
		}
		if n := runsOf(srv, job); n != 1 {
			t.Fatalf("%d RunJob calls, want 1", n)
		}
	})
}

// drainTimed delivers queued tasks, the fake clock running to each task's
// delay, retrying failed deliveries as the queue does; it returns how many
// deliveries failed.
func (h *harness) drainTimed(limit int) int {
	h.t.Helper()
	failed := 0
	for n := 0; n < limit; n++ {
		tasks := h.queue.take()
		if len(tasks) == 0 {
			return failed
		}
		t := tasks[0]
		h.queue.tasks = append(h.queue.tasks, tasks[1:]...)
		h.advance(t.Delay)
		if _, err := h.orch.HandleStep(ctx, t.Payload, pipeline.Delivery{TaskName: t.Name}); err != nil {
			failed++
			h.queue.tasks = append(h.queue.tasks, pipeline.Task{Name: t.Name, Payload: t.Payload})
		}
	}
	h.t.Fatalf("drainTimed: tasks left after %d deliveries", limit)
	return failed
}

// An operator's forced re-run of the waiting step cancels its execution and
// runs the job again in the new generation, under the generation's key
// (the old execution, cancelled, is not adopted).
func TestAsyncCloudRunJobForcedRerunRunsTheJobAgain(t *testing.T) {
	srv := runtest.Start(t)
	h := newHarness(t, chainYAML)
	job := cloudRunHarness(t, h, srv, runtest.Outcome{Gets: 2}, "6h")
	id, _ := startWaiting(t, h)
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "job", Force: true}); err != nil {
		t.Fatal(err)
	}
	if len(srv.Cancels()) != 1 {
		t.Fatalf("cancels %v", srv.Cancels())
	}
	h.deliverShort(30)
	r := h.run(id)
	if step := stepOf(r, "job"); r.Status != pipeline.RunSucceeded || step.Generation != 2 {
		t.Fatalf("run %s (%s), job %+v", r.Status, r.Error, step)
	}
	runs := srv.Runs()
	if runsOf(srv, job) != 2 {
		t.Fatalf("%d RunJob calls, want 2", len(runs))
	}
	ns := h.ledger.(pipeline.Namespacer).Namespace()
	for i := range 2 {
		want := cloudrunjob.Key(steps.Input{RunID: id, Step: "job", Generation: i + 1, Namespace: ns})
		if !strings.HasPrefix(want, fmt.Sprintf("%s/job/g%d/", id, i+1)) {
			t.Fatalf("key %q does not name run, step and generation", want)
		}
		got := ""
		for _, e := range runs[i].GetOverrides().GetContainerOverrides()[0].GetEnv() {
			if e.GetName() == cloudrunjob.EnvKey {
				got = e.GetValue()
			}
		}
		if got != want {
			t.Fatalf("run %d has key %q, want %q", i+1, got, want)
		}
	}
}

// A crash between RunJob and recording the execution: after the lease the
// redelivery starts again and adopts the execution the lost start began,
// so the job runs once and the run completes.
func TestAsyncCloudRunJobCrashAfterRunJobAdopts(t *testing.T) {
	srv := runtest.Start(t)
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		cl := &crashLedger{Ledger: led}
		h := newHarnessOn(t, chainYAML, cl)
		job := cloudRunHarness(t, h, srv, runtest.Outcome{Gets: 2}, "6h")
		id, start := deliverStart(t, h)
		cl.crashes.Store(1)
		if _, err := h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{}); err == nil {
			t.Fatal("the wait was not recorded but the delivery succeeded")
		}
		if n := runsOf(srv, job); n != 1 {
			t.Fatalf("%d RunJob calls before the crash", n)
		}
		h.advance(pipeline.AsyncRequestTimeout + time.Minute)
		if res, err := h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{}); err != nil || res.Outcome != pipeline.OutcomeWaiting {
			t.Fatalf("redelivery after the lease: %+v, %v", res, err)
		}
		h.deliverShort(20)
		r := h.run(id)
		if step := stepOf(r, "job"); r.Status != pipeline.RunSucceeded || step.Attempts != 1 {
			t.Fatalf("run %s (%s), job %+v", r.Status, r.Error, step)
		}
		if n := runsOf(srv, job); n != 1 {
			t.Fatalf("%d RunJob calls, want 1", n)
		}
	})
}
