package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

var ctx = context.Background()

// Invariant 1: a run is pipeline + key; the scheduled date is taken in the
// pipeline's time zone; starting an existing run is a no-op reporting it.
func TestStartIsIdempotentAndUsesTheTimeZone(t *testing.T) {
	h := newHarness(t, chainYAML)
	// 23:30 UTC on the 23rd is already the 24th in Paris.
	sched := time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC)
	res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", ScheduleTime: sched, Trigger: "scheduler"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Run.ID != "chain@2026-11-24" || res.Run.Date != "2026-11-24" {
		t.Fatalf("first start = %+v", res)
	}
	if res.Run.Status != pipeline.RunRunning {
		t.Fatalf("status after start = %s, want running", res.Run.Status)
	}
	first := h.queue.take()
	if len(first) != 1 || first[0].Payload.Step != "a" || first[0].Name != h.orch.TaskName("chain@2026-11-24", "a", 1) {
		t.Fatalf("enqueued %+v, want the root a", first)
	}
	// A Scheduler retry for the same tick, and a duplicate a minute later.
	for _, st := range []time.Time{sched, sched.Add(time.Minute)} {
		again, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", ScheduleTime: st})
		if err != nil {
			t.Fatal(err)
		}
		if again.Created || again.Run.ID != res.Run.ID || again.Run.Status != pipeline.RunRunning {
			t.Fatalf("duplicate start = %+v", again)
		}
	}
	if got := h.queue.take(); len(got) != 0 {
		t.Fatalf("duplicate start enqueued %d task(s)", len(got))
	}
	if n := h.events.count(pipeline.EventRunStarted); n != 1 {
		t.Fatalf("run_started notified %d times, want 1", n)
	}
	// Without a schedule time: now in the pipeline's time zone.
	h.advance(13*time.Hour + 30*time.Minute) // 23:30 UTC -> next day in Paris
	now, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain"})
	if err != nil {
		t.Fatal(err)
	}
	if now.Run.Date != "2026-11-24" {
		t.Fatalf("date from now = %s, want 2026-11-24 (Paris)", now.Run.Date)
	}
}

func TestStartHealsARunWhoseRootsWereNeverEnqueued(t *testing.T) {
	h := newHarness(t, chainYAML)
	h.queue.failing = 1
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err == nil {
		t.Fatal("start succeeded although the enqueue failed")
	}
	if r := h.run("chain@2026-11-23"); r.Status != pipeline.RunPending {
		t.Fatalf("status = %s, want pending until its roots are enqueued", r.Status)
	}
	res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"})
	if err != nil || res.Created || res.Run.Status != pipeline.RunRunning {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	if got := h.queue.take(); len(got) != 1 {
		t.Fatalf("retry enqueued %d task(s), want the root", len(got))
	}
}

func TestChainRunsToCompletion(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23", Params: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	h.drain(20)
	r := h.run("chain@2026-11-23")
	if r.Status != pipeline.RunSucceeded || r.FinishedAt.IsZero() {
		t.Fatalf("run = %s", r.Status)
	}
	for _, name := range []string{"a", "b", "c"} {
		if n := h.bodies[name].runs.Load(); n != 1 {
			t.Errorf("%s ran %d times", name, n)
		}
		s := stepOf(r, name)
		if s.Status != pipeline.StepSucceeded || s.Attempts != 1 || string(s.Output) != `{"step":"`+name+`"}` {
			t.Errorf("%s = %+v", name, s)
		}
	}
	if n := h.events.count(pipeline.EventRunSucceeded); n != 1 {
		t.Fatalf("run_succeeded notified %d times", n)
	}
}

// Invariant 2: a body runs only when every predecessor has succeeded, unless forced.
func TestStepWaitsForPredecessors(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	p := pipeline.TaskPayload{RunID: "chain@2026-11-23", Step: "b", Generation: 1, Date: "2026-11-23"}
	before := h.run(p.RunID)
	_, err := h.orch.HandleStep(ctx, p, pipeline.Delivery{})
	if !errors.Is(err, pipeline.ErrNotReady) || pipeline.ErrorStatus(err) != 409 {
		t.Fatalf("b before a: err = %v, want not ready (409)", err)
	}
	if h.bodies["b"].runs.Load() != 0 {
		t.Fatal("b's body ran before a succeeded")
	}
	if after := h.run(p.RunID); stepOf(after, "b").Version != stepOf(before, "b").Version {
		t.Fatal("a refused delivery changed the ledger")
	}
	// A task that only claims force does not pass the gate...
	p.Force = true
	if _, err := h.orch.HandleStep(ctx, p, pipeline.Delivery{}); !errors.Is(err, pipeline.ErrNotReady) || h.bodies["b"].runs.Load() != 0 {
		t.Fatalf("a crafted force task: %v", err)
	}
	// ...an operator's forced enqueue (recorded in the ledger) does.
	e, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: p.RunID, Step: "b", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	p.Generation = e.Generation
	res, err := h.orch.HandleStep(ctx, p, pipeline.Delivery{})
	if err != nil || res.Outcome != pipeline.OutcomeSucceeded || h.bodies["b"].runs.Load() != 1 {
		t.Fatalf("forced b = %+v, %v", res, err)
	}
	if !stepOf(h.run(p.RunID), "b").Forced {
		t.Fatal("a forced run is not recorded as forced")
	}
}

func TestFanOutFanInRunsJoinOnce(t *testing.T) {
	h := newHarness(t, fanYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "fan", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	// Deliver root, then left and right concurrently.
	root := h.queue.take()
	if _, err := h.orch.HandleStep(ctx, root[0].Payload, pipeline.Delivery{}); err != nil {
		t.Fatal(err)
	}
	branches := h.queue.take()
	if len(branches) != 2 {
		t.Fatalf("fan-out enqueued %d, want 2", len(branches))
	}
	var wg sync.WaitGroup
	for _, b := range branches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.orch.HandleStep(ctx, b.Payload, pipeline.Delivery{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	joins := h.queue.take()
	if len(joins) != 1 || joins[0].Payload.Step != "join" {
		t.Fatalf("after both branches: %+v, want join once", joins)
	}
	if _, err := h.orch.HandleStep(ctx, joins[0].Payload, pipeline.Delivery{}); err != nil {
		t.Fatal(err)
	}
	r := h.run("fan@2026-11-23")
	if r.Status != pipeline.RunSucceeded || h.bodies["join"].runs.Load() != 1 {
		t.Fatalf("run %s, join ran %d", r.Status, h.bodies["join"].runs.Load())
	}
}

// Invariant 3: one attempt at a time; never again after success.
func TestConcurrentDuplicateDeliveriesRunTheBodyOnce(t *testing.T) {
	h := newHarness(t, chainYAML)
	h.bodies["a"].delay = 50 * time.Millisecond
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	task := h.queue.take()[0]
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{TaskName: task.Name})
			key := string(res.Outcome)
			if err != nil {
				key = fmt.Sprintf("%d", pipeline.ErrorStatus(err))
			}
			mu.Lock()
			outcomes[key]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if n := h.bodies["a"].runs.Load(); n != 1 {
		t.Fatalf("body ran %d times under 50 duplicate deliveries (%v)", n, outcomes)
	}
	if outcomes["succeeded"] != 1 {
		t.Fatalf("outcomes %v, want exactly one succeeded", outcomes)
	}
	// A late duplicate after success: no re-run.
	res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{})
	if err != nil || res.Outcome != pipeline.OutcomeAlreadyDone || h.bodies["a"].runs.Load() != 1 {
		t.Fatalf("late duplicate = %+v, %v", res, err)
	}
	if s := stepOf(h.run("chain@2026-11-23"), "a"); s.Attempts != 1 {
		t.Fatalf("attempts = %d, want 1", s.Attempts)
	}
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	task := h.queue.take()[0]
	// Simulate a crash mid-step: claim by hand, as a dead process would have.
	got, err := h.ledger.GetSteps(ctx, task.Payload.RunID, "a")
	if err != nil {
		t.Fatal(err)
	}
	s := got[0]
	s.Status, s.Attempts, s.LeaseUntil = pipeline.StepRunning, 1, h.clock().Add(time.Minute)
	if _, err := h.ledger.UpdateStep(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{}); !errors.Is(err, pipeline.ErrLeaseHeld) {
		t.Fatalf("delivery during a live lease: %v, want lease held", err)
	}
	if h.bodies["a"].runs.Load() != 0 {
		t.Fatal("body ran while another attempt held the lease")
	}
	h.advance(2 * time.Minute)
	res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{})
	if err != nil || res.Outcome != pipeline.OutcomeSucceeded || res.Attempt != 2 {
		t.Fatalf("after lease expiry = %+v, %v", res, err)
	}
}

func TestExpiredLeaseOfTheLastAttemptFailsTheStep(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	task := h.queue.take()[0]
	got, _ := h.ledger.GetSteps(ctx, task.Payload.RunID, "a")
	s := got[0]
	s.Status, s.Attempts, s.LeaseUntil = pipeline.StepRunning, 3, h.clock().Add(-time.Second)
	if _, err := h.ledger.UpdateStep(ctx, s); err != nil {
		t.Fatal(err)
	}
	res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{})
	if err != nil || res.Outcome != pipeline.OutcomeLeaseExhausted || res.Status != pipeline.StepFailed {
		t.Fatalf("= %+v, %v", res, err)
	}
	if r := h.run(task.Payload.RunID); r.Status != pipeline.RunFailed || h.events.count(pipeline.EventRunFailed) != 1 {
		t.Fatalf("run %s, run_failed events %d", r.Status, h.events.count(pipeline.EventRunFailed))
	}
}

// Invariant 5: successor enqueue is idempotent; a failed enqueue after success
// answers 5xx and its retry only re-enqueues.
func TestFailedSuccessorEnqueueIsHealedByTheRetryWithoutRerun(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	task := h.queue.take()[0]
	h.queue.failing = 1
	_, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{})
	if err == nil || pipeline.ErrorStatus(err) < 500 {
		t.Fatalf("enqueue failure answered %v (status %d), want 5xx", err, pipeline.ErrorStatus(err))
	}
	if s := stepOf(h.run(task.Payload.RunID), "a"); s.Status != pipeline.StepSucceeded {
		t.Fatalf("a = %s, want succeeded (committed before the enqueue)", s.Status)
	}
	res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{})
	if err != nil || res.Outcome != pipeline.OutcomeAlreadyDone {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	if n := h.bodies["a"].runs.Load(); n != 1 {
		t.Fatalf("a ran %d times", n)
	}
	next := h.queue.take()
	if len(next) != 1 || next[0].Name != h.orch.TaskName(task.Payload.RunID, "b", 1) {
		t.Fatalf("successor tasks %+v", next)
	}
	// A third delivery enqueues the same name again: the queue dedups it.
	if _, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{}); err != nil {
		t.Fatal(err)
	}
	if got := h.queue.take(); len(got) != 0 {
		t.Fatalf("duplicate enqueue produced %d new task(s)", len(got))
	}
}

func TestTaskNamesAreDeterministicAndValid(t *testing.T) {
	a := pipeline.TaskName("daily@2026-11-23", "extract", 1)
	if a != pipeline.TaskName("daily@2026-11-23", "extract", 1) {
		t.Fatal("not deterministic")
	}
	for _, other := range []string{
		pipeline.TaskName("daily@2026-11-23", "extract", 2),
		pipeline.TaskName("daily@2026-11-24", "extract", 1),
		pipeline.TaskName("daily@2026-11-23", "report", 1),
	} {
		if other == a {
			t.Fatalf("collision: %s", a)
		}
	}
	n := pipeline.TaskName("x@1", "weird step/name!", 3)
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			t.Fatalf("task name %q has %q", n, r)
		}
	}
}

// Invariant 7: permanent errors are not retried; transient ones are, up to
// the attempt limit, then the step and run fail and are notified.
func TestPermanentErrorFailsAtOnce(t *testing.T) {
	h := newHarness(t, chainYAML)
	h.bodies["a"].fail = func(int) error { return steps.Permanent(errors.New("bad input row 7")) }
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	errs := h.drain(10)
	if errs["a"] != nil {
		t.Fatalf("a permanent failure must answer 2xx (no retry), got %v", errs["a"])
	}
	r := h.run("chain@2026-11-23")
	a := stepOf(r, "a")
	if a.Status != pipeline.StepFailed || a.Attempts != 1 || h.bodies["a"].runs.Load() != 1 {
		t.Fatalf("a = %+v after %d runs", a, h.bodies["a"].runs.Load())
	}
	if r.Status != pipeline.RunFailed || h.bodies["b"].runs.Load() != 0 {
		t.Fatalf("run %s; b ran %d", r.Status, h.bodies["b"].runs.Load())
	}
	if h.events.count(pipeline.EventStepFailed) != 1 || h.events.count(pipeline.EventRunFailed) != 1 {
		t.Fatal("failure not notified exactly once")
	}
}

func TestTransientErrorsRetryUpToTheLimit(t *testing.T) {
	h := newHarness(t, chainYAML)
	h.bodies["a"].fail = func(int) error { return errors.New("upstream 503") }
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	task := h.queue.take()[0]
	for attempt := 1; attempt <= 2; attempt++ {
		res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{})
		var re *pipeline.RetryableError
		if !errors.As(err, &re) || pipeline.ErrorStatus(err) != 500 || res.Status != pipeline.StepRetrying {
			t.Fatalf("attempt %d: %+v, %v; want a retryable 5xx", attempt, res, err)
		}
	}
	res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{})
	if err != nil || res.Outcome != pipeline.OutcomeFailed || res.Attempt != 3 {
		t.Fatalf("last attempt = %+v, %v", res, err)
	}
	// A further delivery (the queue's own retry) runs nothing.
	if res, err := h.orch.HandleStep(ctx, task.Payload, pipeline.Delivery{}); err != nil || res.Outcome != pipeline.OutcomeNotRunnable {
		t.Fatalf("after failure = %+v, %v", res, err)
	}
	if n := h.bodies["a"].runs.Load(); n != 3 {
		t.Fatalf("body ran %d times, want 3", n)
	}
	if h.events.count(pipeline.EventStepRetrying) != 2 || h.events.count(pipeline.EventRunFailed) != 1 {
		t.Fatalf("retrying %d, run_failed %d", h.events.count(pipeline.EventStepRetrying), h.events.count(pipeline.EventRunFailed))
	}
}

func TestRetryThenSuccessContinuesTheChain(t *testing.T) {
	h := newHarness(t, chainYAML)
	h.bodies["b"].fail = func(attempt int) error {
		if attempt < 2 {
			return errors.New("flaky")
		}
		return nil
	}
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	h.drain(20)
	r := h.run("chain@2026-11-23")
	if r.Status != pipeline.RunSucceeded || stepOf(r, "b").Attempts != 2 || stepOf(r, "b").Error != "" {
		t.Fatalf("run %s, b %+v", r.Status, stepOf(r, "b"))
	}
}

func TestPanickingStepIsATransientFailure(t *testing.T) {
	h := newHarness(t, chainYAML)
	h.bodies["a"].fail = func(attempt int) error {
		if attempt == 1 {
			panic("nil map")
		}
		return nil
	}
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	h.drain(20)
	if r := h.run("chain@2026-11-23"); r.Status != pipeline.RunSucceeded || stepOf(r, "a").Attempts != 2 {
		t.Fatalf("run %s, a attempts %d", r.Status, stepOf(r, "a").Attempts)
	}
}

// Invariants 4 and 6: every notification carries a change already committed;
// a failing notifier fails nothing; the final notification is sent once.
func TestNotificationsFollowCommitsAndNeverFailSteps(t *testing.T) {
	var h *harness
	var mu sync.Mutex
	var problems []string
	check := func(e pipeline.Event) {
		if e.Step == nil {
			return
		}
		got, err := h.ledger.GetSteps(ctx, e.Run.ID, e.Step.Step)
		mu.Lock()
		defer mu.Unlock()
		// Events are sent in the background: the step may have moved on
		// since, but the event's state must be a committed version.
		committed := err == nil && e.Step.Version != 0 && got[0].Version >= e.Step.Version &&
			(got[0].Version > e.Step.Version || (got[0].Status == e.Step.Status && got[0].Attempts == e.Step.Attempts))
		if !committed {
			problems = append(problems, fmt.Sprintf("%s: event says %s/%d (version %d), ledger %+v %v", e.Kind, e.Step.Status, e.Step.Attempts, e.Step.Version, got, err))
		}
	}
	// Discord is down for step events throughout and for the first attempt
	// at the final notification.
	var finalTries int
	broken := notifierFunc(func(_ context.Context, e pipeline.Event) error {
		if e.Step == nil && e.Run.Status.Terminal() {
			finalTries++
			if finalTries > 1 {
				return nil
			}
		}
		return errors.New("discord down")
	})
	h = newHarness(t, chainYAML, broken)
	h.events.check = check
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	h.drain(20)
	// Duplicate deliveries of the last step after the run ended, once the
	// instance that ended it has had its time to notify.
	h.advance(time.Minute)
	last := pipeline.TaskPayload{RunID: "chain@2026-11-23", Step: "c", Generation: 1, Date: "2026-11-23"}
	for range 3 {
		if _, err := h.orch.HandleStep(ctx, last, pipeline.Delivery{}); err != nil {
			t.Fatal(err)
		}
		h.flush() // the next duplicate comes once this one's send is over
	}
	if len(problems) > 0 {
		t.Fatalf("notified before commit: %v", problems)
	}
	r := h.run("chain@2026-11-23")
	if r.Status != pipeline.RunSucceeded || r.Notify != pipeline.NotifyDone {
		t.Fatalf("run %s notify %q", r.Status, r.Notify)
	}
	// Sent once when the run ended (refused), once more by the first
	// duplicate (accepted), never again.
	if n := h.events.count(pipeline.EventRunSucceeded); n != 2 || finalTries != 2 {
		t.Fatalf("run_succeeded sent %d times (%d tries), want 2", n, finalTries)
	}
	if r := h.run("chain@2026-11-23"); stepOf(r, "c").Attempts != 1 || h.bodies["c"].runs.Load() != 1 {
		t.Fatal("a notification failure re-ran a step")
	}
}

func TestOwedFinalNotificationIsSentByALaterDelivery(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	h.drain(20)
	// Rewind to "finished but not yet notified", as a crash right after the
	// run's commit would leave it.
	r := h.run("chain@2026-11-23")
	r.Notify, r.Steps = pipeline.NotifyPending, nil
	if _, err := h.ledger.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	before := h.events.count(pipeline.EventRunSucceeded)
	last := pipeline.TaskPayload{RunID: r.ID, Step: "c", Generation: 1, Date: "2026-11-23"}
	// While the instance that ended the run may still be sending, others
	// leave it alone...
	if _, err := h.orch.HandleStep(ctx, last, pipeline.Delivery{}); err != nil {
		t.Fatal(err)
	}
	if got := h.events.count(pipeline.EventRunSucceeded); got != before {
		t.Fatalf("sent while the ending instance may still be sending (%d)", got-before)
	}
	// ...then a later delivery sends it.
	h.advance(time.Minute)
	if _, err := h.orch.HandleStep(ctx, last, pipeline.Delivery{}); err != nil {
		t.Fatal(err)
	}
	if got := h.events.count(pipeline.EventRunSucceeded); got != before+1 {
		t.Fatalf("owed notification sent %d times", got-before)
	}
	if h.run(r.ID).Notify != pipeline.NotifyDone {
		t.Fatal("notification not recorded as done")
	}
}

type notifierFunc func(context.Context, pipeline.Event) error

func (f notifierFunc) Notify(ctx context.Context, e pipeline.Event) error { return f(ctx, e) }

// Invariant 9 (domain half): bad input changes nothing.
func TestBadStepPayloadsChangeNothing(t *testing.T) {
	h := newHarness(t, chainYAML)
	if _, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "chain", Date: "2026-11-23"}); err != nil {
		t.Fatal(err)
	}
	before := h.run("chain@2026-11-23")
	cases := map[string]struct {
		p    pipeline.TaskPayload
		code int
	}{
		"bad run id":       {pipeline.TaskPayload{RunID: "nope", Step: "a", Generation: 1, Date: "2026-11-23"}, 400},
		"unknown pipeline": {pipeline.TaskPayload{RunID: "other@2026-11-23", Step: "a", Generation: 1, Date: "2026-11-23"}, 404},
		"unknown run":      {pipeline.TaskPayload{RunID: "chain@2020-01-01", Step: "a", Generation: 1, Date: "2020-01-01"}, 404},
		"unknown step":     {pipeline.TaskPayload{RunID: "chain@2026-11-23", Step: "zzz", Generation: 1, Date: "2026-11-23"}, 404},
		"bad date":         {pipeline.TaskPayload{RunID: "chain@2026-11-23", Step: "a", Generation: 1, Date: "23/11/2026"}, 400},
		"generation 0":     {pipeline.TaskPayload{RunID: "chain@2026-11-23", Step: "a", Generation: 0, Date: "2026-11-23"}, 400},
	}
	for name, c := range cases {
		_, err := h.orch.HandleStep(ctx, c.p, pipeline.Delivery{})
		if got := pipeline.ErrorStatus(err); got != c.code {
			t.Errorf("%s: status %d (%v), want %d", name, got, err, c.code)
		}
	}
	for _, bad := range []pipeline.StartRequest{
		{Pipeline: "nope"}, {Pipeline: "chain", Date: "2026-13-01"}, {Pipeline: "chain", Key: "../etc"},
		{Pipeline: "chain", Params: map[string]string{"": "x"}},
	} {
		if _, err := h.orch.Start(ctx, bad); err == nil || pipeline.ErrorStatus(err) >= 500 {
			t.Errorf("start %+v: %v, want a 4xx error", bad, err)
		}
	}
	after := h.run("chain@2026-11-23")
	if after.Version != before.Version {
		t.Fatal("bad input changed the run")
	}
	for i := range before.Steps {
		if before.Steps[i].Version != after.Steps[i].Version {
			t.Fatalf("bad input changed step %s", before.Steps[i].Step)
		}
	}
	runs, err := h.ledger.ListRuns(ctx, pipeline.RunFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs after bad input: %d, %v", len(runs), err)
	}
}

// A notifier that records its own state in the run (as Discord does) must
// not leave the final notification owed.
func TestFinalNotificationRecordedWhenTheNotifierWritesTheRun(t *testing.T) {
	var h *harness
	writer := notifierFunc(func(ctx context.Context, e pipeline.Event) error {
		if e.Step != nil || !e.Run.Status.Terminal() {
			return nil
		}
		r, err := h.ledger.GetRun(ctx, e.Run.ID)
		if err != nil {
			return err
		}
		r.Notes, r.Steps = map[string]string{"discord.final": "posted"}, nil
		_, err = h.ledger.UpdateRun(ctx, r)
		return err
	})
	h = newHarness(t, chainYAML, writer)
	id := startAndDrain(t, h, "2026-11-23")
	r := h.run(id)
	if r.Notify != pipeline.NotifyDone || r.Notes["discord.final"] != "posted" {
		t.Fatalf("notify %q notes %v", r.Notify, r.Notes)
	}
}
