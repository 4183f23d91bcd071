package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/option"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps/bigquery"
	"github.com/pipelinehq/pipeline/steps/bigquery/bigquerytest"
)

// bigqueryYAML is a chain whose middle step is a bigquery.query checked
// every 30 minutes for up to 6 hours.
const bigqueryYAML = `
name: waits
time_zone: UTC
steps:
  - {name: a, kind: a, after: []}
  - name: merge
    kind: bigquery.query
    timeout: 6h
    max_attempts: 3
    bigquery.query:
      project: my-project
      location: EU
      query: "MERGE ds.sales T USING ds.staging S ON T.id = S.id AND S.day = DATE '{{.Date}}' WHEN NOT MATCHED THEN INSERT ROW"
      check_interval: 30m
  - {name: c, kind: c}
`

// withBigQuery registers the bigquery.query kind on h, talking to a fresh
// stand-in whose jobs are done on their doneAfter-th get, and deploys
// bigqueryYAML.
func withBigQuery(t *testing.T, h *harness, doneAfter int) *bigquerytest.Server {
	t.Helper()
	srv := bigquerytest.New(doneAfter)
	t.Cleanup(srv.Close)
	bigquery.Register(h.reg, option.WithEndpoint(srv.Endpoint()), option.WithoutAuthentication())
	h.deploy(bigqueryYAML)
	return srv
}

// deliverNext delivers the one queued task, which must be for step.
func deliverNext(t *testing.T, h *harness, step string) pipeline.Task {
	t.Helper()
	tasks := h.queue.take()
	if len(tasks) != 1 || tasks[0].Payload.Step != step {
		t.Fatalf("queued %+v, want one task for %s", tasks, step)
	}
	if _, err := h.orch.HandleStep(ctx, tasks[0].Payload, pipeline.Delivery{TaskName: tasks[0].Name}); err != nil {
		t.Fatalf("delivery of %s: %v", tasks[0].Name, err)
	}
	return tasks[0]
}

// mergeOutput checks that the run succeeded and returns the merge step's
// output.
func mergeOutput(t *testing.T, h *harness, id string) (pipeline.StepRun, bigquery.Output) {
	t.Helper()
	r := h.run(id)
	merge := stepOf(r, "merge")
	if r.Status != pipeline.RunSucceeded || merge.Status != pipeline.StepSucceeded {
		t.Fatalf("run %s (%s), merge %+v", r.Status, r.Error, merge)
	}
	var out bigquery.Output
	if err := json.Unmarshal(merge.Output, &out); err != nil {
		t.Fatalf("merge output %s: %v", merge.Output, err)
	}
	return merge, out
}

// The bigquery.query kind through the orchestrator, on both ledgers: the
// middle step waits 3 hours (fake clock) on the query job, checked every 30
// minutes in short requests, and the job is inserted exactly once, under
// the ID of the run's step, generation 1, attempt 1.
func TestAsyncBigQueryStepThroughTheOrchestrator(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		srv := withBigQuery(t, h, 6)
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		names := h.deliverTimed(30)
		merge, out := mergeOutput(t, h, res.Run.ID)
		if waited := merge.FinishedAt.Sub(merge.WaitingSince); waited < 3*time.Hour || waited > 4*time.Hour {
			t.Fatalf("waited %s, want 3h", waited)
		}
		if merge.Attempts != 1 || merge.Check != 6 {
			t.Fatalf("merge attempts %d checks %d, want 1 6", merge.Attempts, merge.Check)
		}
		checks := 0
		for _, n := range names {
			if strings.Contains(n, "merge") && strings.Contains(n, "-c") {
				checks++
			}
		}
		if checks != 6 || len(names) != 1+1+6+1 {
			t.Fatalf("deliveries %v: want a, the start, 6 checks and c", names)
		}
		if !strings.HasPrefix(out.JobID, "pipeline_waits_merge_2026-11-23_g1_a1_") || out.AffectedRows != 42 ||
			out.BytesProcessed != 1<<20 || out.Location != "EU" || !strings.Contains(merge.Link, out.JobID) {
			t.Fatalf("output %+v, link %s", out, merge.Link)
		}
		jobs := srv.Jobs()
		if ins, dup, gets, _ := srv.Counts(); ins != 1 || dup != 0 || gets != 6 || len(jobs) != 1 {
			t.Fatalf("inserts %d refused %d gets %d, want 1 0 6", ins, dup, gets)
		}
		if q := jobs[0].Configuration.Query.Query; !strings.Contains(q, "DATE '2026-11-23'") {
			t.Fatalf("query %q", q)
		}
	})
}

// A crash between the start and recording it: the service shuts down while
// BigQuery has created the job but not yet answered. The attempt is
// released uncounted, and the retry starts the same attempt again: BigQuery
// refuses the job ID (409) and the step adopts the job, so no second job
// runs.
func TestAsyncBigQueryStartRepeatedAfterACrash(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		srv := withBigQuery(t, h, 2)
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		deliverNext(t, h, "a")
		start := h.queue.take()[0]
		created, release := srv.HoldNextInsert()
		defer release()
		rctx, cancel := context.WithCancelCause(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := h.orch.HandleStep(rctx, start.Payload, pipeline.Delivery{TaskName: start.Name})
			errc <- err
		}()
		<-created // the job exists; its reply is held
		cancel(pipeline.ErrShutdown)
		if err := <-errc; !errors.Is(err, pipeline.ErrShutdown) {
			t.Fatalf("interrupted start: %v, want a shutdown error", err)
		}
		if merge := stepOf(h.run(res.Run.ID), "merge"); merge.Status != pipeline.StepRetrying || merge.Attempts != 0 {
			t.Fatalf("merge after the crash: %s attempts %d", merge.Status, merge.Attempts)
		}
		h.queue.tasks = append(h.queue.tasks, start) // the queue retries the start
		h.deliverTimed(20)
		merge, out := mergeOutput(t, h, res.Run.ID)
		if ins, dup, _, _ := srv.Counts(); ins != 1 || dup != 1 {
			t.Fatalf("inserts %d refused %d, want 1 1", ins, dup)
		}
		if merge.Attempts != 1 || !strings.Contains(out.JobID, "_g1_a1_") {
			t.Fatalf("merge attempts %d, job %s", merge.Attempts, out.JobID)
		}
	})
}

// A start whose reply was lost after BigQuery created the job fails the
// attempt transiently; the next attempt finds the earlier attempt's job
// running and waits on it instead of inserting a second one.
func TestAsyncBigQueryRetryAfterALostReply(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		srv := withBigQuery(t, h, 2)
		srv.Inject("insert", bigquerytest.Fault{Status: 503, Reason: "backendError", AfterEffect: true})
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		deliverNext(t, h, "a")
		start := h.queue.take()[0]
		var retry *pipeline.RetryableError
		if _, err := h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{TaskName: start.Name}); !errors.As(err, &retry) {
			t.Fatalf("start with a lost reply: %v, want a retryable failure", err)
		}
		h.queue.tasks = append(h.queue.tasks, start) // the queue retries
		h.deliverTimed(20)
		merge, out := mergeOutput(t, h, res.Run.ID)
		if ins, _, _, _ := srv.Counts(); ins != 1 {
			t.Fatalf("%d jobs inserted, want 1", ins)
		}
		if merge.Attempts != 2 || !strings.Contains(out.JobID, "_g1_a1_") {
			t.Fatalf("merge attempts %d, job %s: want attempt 2 waiting on attempt 1's job", merge.Attempts, out.JobID)
		}
	})
}

// Cancelling the run while the query waits cancels the BigQuery job.
func TestAsyncBigQueryCancelWhileWaiting(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		srv := withBigQuery(t, h, 100)
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		deliverNext(t, h, "a")
		deliverNext(t, h, "merge")
		check := h.queue.take()
		if len(check) != 1 || check[0].Payload.Check != 1 {
			t.Fatalf("after the start, queued %+v, want check 1", check)
		}
		if merge := stepOf(h.run(res.Run.ID), "merge"); merge.Status != pipeline.StepWaiting {
			t.Fatalf("merge %+v, want waiting", merge)
		}
		if _, err := h.orch.Cancel(ctx, res.Run.ID); err != nil {
			t.Fatal(err)
		}
		ids := srv.JobIDs()
		if len(ids) != 1 {
			t.Fatalf("jobs %v", ids)
		}
		if state, reason := srv.State("my-project", ids[0]); state != "DONE" || reason != "stopped" {
			t.Fatalf("job after the run's cancel: %s %s, want DONE stopped", state, reason)
		}
		h.advance(30 * time.Minute)
		if r, err := h.orch.HandleStep(ctx, check[0].Payload, pipeline.Delivery{}); err != nil || r.Outcome != pipeline.OutcomeNotRunnable {
			t.Fatalf("check after cancel: %+v, %v", r, err)
		}
		if _, _, gets, cancels := srv.Counts(); gets != 0 || cancels != 1 {
			t.Fatalf("gets %d cancels %d, want 0 1", gets, cancels)
		}
		if r := h.run(res.Run.ID); r.Status != pipeline.RunCancelled {
			t.Fatalf("run %s", r.Status)
		}
	})
}

// An operator's forced re-run of the waiting query cancels its job and
// runs the query again as a job of the new generation (a new job ID: the
// old one is taken).
func TestAsyncBigQueryForcedRerunIsANewJob(t *testing.T) {
	h := newHarness(t, chainYAML)
	srv := withBigQuery(t, h, 2)
	res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	deliverNext(t, h, "a")
	deliverNext(t, h, "merge")
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: res.Run.ID, Step: "merge", Force: true}); err != nil {
		t.Fatal(err)
	}
	h.deliverTimed(20)
	_, out := mergeOutput(t, h, res.Run.ID)
	ids := srv.JobIDs()
	if ins, dup, _, cancels := srv.Counts(); ins != 2 || dup != 0 || cancels != 1 || len(ids) != 2 {
		t.Fatalf("inserts %d refused %d cancels %d, jobs %v", ins, dup, cancels, ids)
	}
	if !strings.Contains(out.JobID, "_g2_a1_") {
		t.Fatalf("the re-run waited on %s, want generation 2's job", out.JobID)
	}
	for _, id := range ids {
		if strings.Contains(id, "_g1_") {
			if state, reason := srv.State("my-project", id); state != "DONE" || reason != "stopped" {
				t.Fatalf("generation 1's job %s: %s %s, want cancelled", id, state, reason)
			}
		}
	}
}

// A query still running at the step's timeout fails the step (not
// retried) and its job is cancelled.
func TestAsyncBigQueryTimeoutCancelsTheJob(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		srv := withBigQuery(t, h, 1000)
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		h.deliverTimed(30)
		r := h.run(res.Run.ID)
		merge := stepOf(r, "merge")
		if r.Status != pipeline.RunFailed || merge.Status != pipeline.StepFailed || merge.Attempts != 1 || !strings.Contains(merge.Error, "timeout") {
			t.Fatalf("run %s, merge %s attempts %d: %s", r.Status, merge.Status, merge.Attempts, merge.Error)
		}
		ids := srv.JobIDs()
		if ins, _, _, cancels := srv.Counts(); ins != 1 || cancels != 1 || len(ids) != 1 {
			t.Fatalf("inserts %d cancels %d", ins, cancels)
		}
		if state, reason := srv.State("my-project", ids[0]); state != "DONE" || reason != "stopped" {
			t.Fatalf("job after the timeout: %s %s, want cancelled", state, reason)
		}
	})
}

// A crash (the process dies) after BigQuery created the job and before the
// wait was recorded: once the start's lease expires the redelivery starts
// the same attempt again, BigQuery refuses the job ID (409) and the step
// adopts the job: one job, one attempt, the run completes.
func TestAsyncBigQueryCrashBetweenStartAndRecord(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		cl := &crashLedger{Ledger: led}
		h := newHarnessOn(t, chainYAML, cl)
		srv := withBigQuery(t, h, 2)
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		deliverNext(t, h, "a")
		start := h.queue.take()[0]
		cl.crashes.Store(1)
		if _, err := h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{TaskName: start.Name}); err == nil {
			t.Fatal("the wait was not recorded but the delivery succeeded")
		}
		if ins, _, _, _ := srv.Counts(); ins != 1 {
			t.Fatalf("%d jobs before the crash", ins)
		}
		h.advance(pipeline.AsyncRequestTimeout + time.Minute) // the start's lease expires
		h.queue.tasks = append(h.queue.tasks, start)          // the queue redelivers
		h.deliverTimed(20)
		merge, out := mergeOutput(t, h, res.Run.ID)
		if ins, dup, _, _ := srv.Counts(); ins != 1 || dup != 1 {
			t.Fatalf("inserts %d refused %d, want 1 1", ins, dup)
		}
		if merge.Attempts != 1 || !strings.Contains(out.JobID, "_g1_a1_") {
			t.Fatalf("merge attempts %d, job %s", merge.Attempts, out.JobID)
		}
	})
}
