package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// fakeJob is an asynchronous step kind: Start hands out a job, each Check
// counts one poll, and the job is done after `polls` checks.
type fakeJob struct {
	mu                      sync.Mutex
	starts, checks, cancels int
	polls                   int
	after                   time.Duration
	// checkErr, if set, decides the error of check n (from 1).
	checkErr func(n int) error
	states   []string // the states Check was given
}

var (
	_ steps.AsyncStep = (*fakeJob)(nil)
	_ steps.Canceller = (*fakeJob)(nil)
)

type jobState struct {
	Job   string `json:"job"`
	Polls int    `json:"polls"`
}

func (j *fakeJob) Run(context.Context, steps.Input) (json.RawMessage, error) {
	return nil, errors.New("an asynchronous step is never run synchronously")
}

func (j *fakeJob) Start(_ context.Context, in steps.Input) (steps.Poll, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.starts++
	st, _ := json.Marshal(jobState{Job: fmt.Sprintf("job-%s-a%d", in.Key(), in.Attempt)})
	return steps.Poll{State: st, After: j.after, Link: "https://jobs.example/" + in.Key()}, nil
}

func (j *fakeJob) Check(_ context.Context, _ steps.Input, state json.RawMessage) (steps.Poll, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.checks++
	j.states = append(j.states, string(state))
	if j.checkErr != nil {
		if err := j.checkErr(j.checks); err != nil {
			return steps.Poll{}, err
		}
	}
	var st jobState
	if err := json.Unmarshal(state, &st); err != nil {
		return steps.Poll{}, steps.Permanent(err)
	}
	st.Polls++
	if st.Polls >= j.polls {
		out, _ := json.Marshal(map[string]any{"job": st.Job, "polls": st.Polls})
		return steps.Poll{Done: true, Output: out}, nil
	}
	b, _ := json.Marshal(st)
	return steps.Poll{State: b, After: j.after}, nil
}

func (j *fakeJob) Cancel(context.Context, steps.Input, json.RawMessage) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cancels++
	return nil
}

func (j *fakeJob) counts() (starts, checks, cancels int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.starts, j.checks, j.cancels
}

const waitsYAML = `
name: waits
time_zone: UTC
steps:
  - {name: a, kind: a, after: []}
  - {name: job, kind: job, timeout: 4h, max_attempts: 2}
  - {name: c, kind: c}
`

// withJob registers the fake job kind on h (over whichever ledger h has).
func withJob(t *testing.T, h *harness, yamlText string, j *fakeJob) {
	t.Helper()
	h.reg.Register("job", func(map[string]any) (steps.Step, error) { return j, nil })
	h.deploy(yamlText)
}

// deliverTimed delivers queued tasks one at a time, letting the fake clock
// run to each task's delay first (a check task waits its interval), and
// returns the delivered tasks' names.
func (h *harness) deliverTimed(limit int) []string {
	h.t.Helper()
	var names []string
	for n := 0; n < limit; n++ {
		tasks := h.queue.take()
		if len(tasks) == 0 {
			return names
		}
		for i, t := range tasks {
			if i > 0 {
				h.queue.tasks = append(h.queue.tasks, t) // keep the rest in order
				continue
			}
			h.advance(t.Delay)
			names = append(names, t.Name)
			if _, err := h.orch.HandleStep(ctx, t.Payload, pipeline.Delivery{TaskName: t.Name}); err != nil {
				h.t.Fatalf("delivery of %s: %v", t.Name, err)
			}
		}
	}
	h.t.Fatalf("deliverTimed: tasks left after %d deliveries", limit)
	return nil
}

// startWaiting starts the waits run and delivers a and the job's start: the
// job is then waiting on its first check, which is returned (not delivered).
func startWaiting(t *testing.T, h *harness) (string, pipeline.Task) {
	t.Helper()
	res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		tasks := h.queue.take()
		if len(tasks) != 1 {
			t.Fatalf("%d tasks queued, want 1: %+v", len(tasks), tasks)
		}
		if _, err := h.orch.HandleStep(ctx, tasks[0].Payload, pipeline.Delivery{TaskName: tasks[0].Name}); err != nil {
			t.Fatal(err)
		}
	}
	tasks := h.queue.take()
	if len(tasks) != 1 || tasks[0].Payload.Check != 1 {
		t.Fatalf("after the start, queued %+v, want check 1", tasks)
	}
	return res.Run.ID, tasks[0]
}

// A step that waits 3 hours (simulated) completes with every request short,
// its work started once, its checks named by number and each delivered once.
func TestAsyncStepWaitsHoursAndCompletes(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		j := &fakeJob{polls: 6, after: 30 * time.Minute}
		withJob(t, h, waitsYAML, j)
		id, first := startWaiting(t, h)

		base := h.orch.TaskName(id, "job", 1)
		job := stepOf(h.run(id), "job")
		if job.Status != pipeline.StepWaiting || job.Check != 1 || job.Attempts != 1 || job.Link != "https://jobs.example/2026-11-23" {
			t.Fatalf("after start: %+v", job)
		}
		if got := job.NextCheckAt.Sub(job.WaitingSince); got < 30*time.Minute || got > 31*time.Minute {
			t.Fatalf("next check %s after the wait began, want 30m", got)
		}
		if !job.LeaseUntil.IsZero() {
			t.Fatalf("a waiting step holds no lease: %v", job.LeaseUntil)
		}
		if first.Name != base+"-c1" || first.Delay != 30*time.Minute || first.Deadline > pipeline.AsyncRequestTimeout+time.Minute {
			t.Fatalf("check task %s delay %s deadline %s", first.Name, first.Delay, first.Deadline)
		}
		h.queue.tasks = append(h.queue.tasks, first)
		names := h.deliverTimed(20)
		want := []string{}
		for n := 1; n <= 6; n++ {
			want = append(want, fmt.Sprintf("%s-c%d", base, n))
		}
		want = append(want, h.orch.TaskName(id, "c", 1))
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Fatalf("delivered\n %v\nwant\n %v", names, want)
		}
		r := h.run(id)
		job = stepOf(r, "job")
		if r.Status != pipeline.RunSucceeded || job.Status != pipeline.StepSucceeded || job.Attempts != 1 {
			t.Fatalf("run %s (%s), job %+v", r.Status, r.Error, job)
		}
		if waited := job.FinishedAt.Sub(job.WaitingSince); waited < 3*time.Hour {
			t.Fatalf("waited %s, want 3h", waited)
		}
		var out map[string]any
		if err := json.Unmarshal(job.Output, &out); err != nil || out["polls"] != float64(6) {
			t.Fatalf("output %s (%v)", job.Output, err)
		}
		if s, c, x := j.counts(); s != 1 || c != 6 || x != 0 {
			t.Fatalf("starts %d checks %d cancels %d, want 1 6 0", s, c, x)
		}
		if n := h.bodies["c"].runs.Load(); n != 1 {
			t.Fatalf("c ran %d times", n)
		}
	})
}

// Duplicate deliveries of the start task or of a check that was handled
// neither start the work again nor check twice: they only make sure the due
// check is queued (which the queue collapses by name).
func TestAsyncDuplicateDeliveries(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		j := &fakeJob{polls: 3, after: time.Minute}
		withJob(t, h, waitsYAML, j)
		id, c1 := startWaiting(t, h)
		start := pipeline.Task{Name: h.orch.TaskName(id, "job", 1), Payload: c1.Payload}
		start.Payload.Check = 0

		// The start task again (a duplicate): no second start, check 1 re-queued.
		res, err := h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{})
		if err != nil || res.Outcome != pipeline.OutcomeWaiting {
			t.Fatalf("duplicate start: %+v, %v", res, err)
		}
		if got := h.queue.take(); len(got) != 0 {
			t.Fatalf("a duplicate queued new tasks: %+v", got) // the name was taken: collapsed
		}
		h.advance(time.Minute)
		if _, err := h.orch.HandleStep(ctx, c1.Payload, pipeline.Delivery{TaskName: c1.Name}); err != nil {
			t.Fatal(err)
		}
		c2 := h.queue.take()
		if len(c2) != 1 || c2[0].Payload.Check != 2 {
			t.Fatalf("after check 1: %+v", c2)
		}
		// Check 1 again (a duplicate delivery): no second poll.
		for range 2 {
			res, err := h.orch.HandleStep(ctx, c1.Payload, pipeline.Delivery{TaskName: c1.Name})
			if err != nil || res.Outcome != pipeline.OutcomeWaiting {
				t.Fatalf("duplicate check: %+v, %v", res, err)
			}
		}
		if _, c, _ := j.counts(); c != 1 {
			t.Fatalf("%d checks after duplicates, want 1", c)
		}
		// A check number ahead of the ledger is refused and changes nothing.
		ahead := c2[0].Payload
		ahead.Check = 7
		if _, err := h.orch.HandleStep(ctx, ahead, pipeline.Delivery{}); !errors.Is(err, pipeline.ErrConflict) {
			t.Fatalf("check ahead: %v, want a conflict", err)
		}
		h.queue.tasks = append(h.queue.tasks, c2...)
		h.deliverTimed(10)
		// Duplicates of every check and of the start after success: nothing runs again.
		for _, p := range []pipeline.TaskPayload{start.Payload, c1.Payload, c2[0].Payload} {
			if _, err := h.orch.HandleStep(ctx, p, pipeline.Delivery{}); err != nil {
				t.Fatal(err)
			}
		}
		h.deliverTimed(10)
		r := h.run(id)
		if s, c, _ := j.counts(); r.Status != pipeline.RunSucceeded || s != 1 || c != 3 || h.bodies["c"].runs.Load() != 1 {
			t.Fatalf("run %s, starts %d checks %d, c ran %d", r.Status, s, c, h.bodies["c"].runs.Load())
		}
	})
}

// The step's timeout bounds the whole wait: the check at the timeout looks
// once more and, the work still going on, fails the step (and the run) and
// cancels the remote work; the last interval is cut short so the failure
// comes at the timeout, not after it.
func TestAsyncTimeoutWhileWaiting(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		j := &fakeJob{polls: 1000, after: 90 * time.Minute}
		withJob(t, h, waitsYAML, j)
		id, c1 := startWaiting(t, h)
		h.queue.tasks = append(h.queue.tasks, c1)
		h.deliverTimed(20)
		r := h.run(id)
		job := stepOf(r, "job")
		if job.Status != pipeline.StepFailed || !strings.Contains(job.Error, "timeout") || r.Status != pipeline.RunFailed {
			t.Fatalf("run %s, job %+v", r.Status, job)
		}
		if waited := job.FinishedAt.Sub(job.WaitingSince); waited < 4*time.Hour || waited > 4*time.Hour+time.Minute {
			t.Fatalf("failed after waiting %s, want the 4h timeout", waited)
		}
		if s, c, x := j.counts(); s != 1 || x != 1 || c != 3 {
			t.Fatalf("starts %d checks %d cancels %d, want 1 3 1 (at 1h30, 3h and the 4h timeout)", s, c, x)
		}
		if job.Attempts != 1 {
			t.Fatalf("attempts %d, want 1 (a timeout of the wait is not retried)", job.Attempts)
		}
	})
}

// A transiently failing check is retried later (honouring the interval the
// error asks for) with the same state, without using the step's attempts; a
// permanent one fails the step.
func TestAsyncCheckFailures(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		j := &fakeJob{polls: 2, after: time.Minute, checkErr: func(n int) error {
			if n <= 3 {
				return steps.RetryAfter(errors.New("503 from the jobs API"), 10*time.Minute)
			}
			return nil
		}}
		withJob(t, h, waitsYAML, j)
		id, c1 := startWaiting(t, h)
		h.advance(c1.Delay)
		if _, err := h.orch.HandleStep(ctx, c1.Payload, pipeline.Delivery{}); err != nil {
			t.Fatal(err)
		}
		job := stepOf(h.run(id), "job")
		next := h.queue.take()
		if job.Status != pipeline.StepWaiting || job.Attempts != 1 || !strings.Contains(job.Error, "503") || len(next) != 1 || next[0].Delay != 10*time.Minute {
			t.Fatalf("after a transient check failure: %+v, next %+v", job, next)
		}
		h.queue.tasks = append(h.queue.tasks, next...)
		h.deliverTimed(20)
		r := h.run(id)
		job = stepOf(r, "job")
		if r.Status != pipeline.RunSucceeded || job.Attempts != 1 {
			t.Fatalf("run %s, job %+v", r.Status, job)
		}
		j.mu.Lock()
		states := j.states
		j.mu.Unlock()
		if len(states) != 5 || states[0] != states[3] {
			t.Fatalf("states given to Check: %v (the failed checks keep the state)", states)
		}
	})
	t.Run("permanent", func(t *testing.T) {
		h := newHarness(t, chainYAML)
		j := &fakeJob{polls: 5, after: time.Minute, checkErr: func(n int) error {
			return steps.Permanent(errors.New("job failed: out of memory"))
		}}
		withJob(t, h, waitsYAML, j)
		id, c1 := startWaiting(t, h)
		h.queue.tasks = append(h.queue.tasks, c1)
		h.deliverTimed(10)
		r := h.run(id)
		if job := stepOf(r, "job"); r.Status != pipeline.RunFailed || job.Status != pipeline.StepFailed || !strings.Contains(job.Error, "out of memory") {
			t.Fatalf("run %s, job %+v", r.Status, job)
		}
		if _, _, x := j.counts(); x != 1 {
			t.Fatalf("cancelled %d times, want once (the check failed for good; see TestAsyncPermanentCheckFailureCancelsTheWork)", x)
		}
	})
}

// Cancelling the run while a step waits cancels the step and its remote
// work; the pending check then changes nothing.
func TestAsyncCancelWhileWaiting(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		j := &fakeJob{polls: 3, after: time.Hour}
		withJob(t, h, waitsYAML, j)
		id, c1 := startWaiting(t, h)
		if _, err := h.orch.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		if job := stepOf(h.run(id), "job"); job.Status != pipeline.StepCancelled {
			t.Fatalf("job %+v", job)
		}
		h.advance(time.Hour)
		res, err := h.orch.HandleStep(ctx, c1.Payload, pipeline.Delivery{})
		if err != nil || res.Outcome != pipeline.OutcomeNotRunnable {
			t.Fatalf("check after cancel: %+v, %v", res, err)
		}
		if s, c, x := j.counts(); s != 1 || c != 0 || x != 1 {
			t.Fatalf("starts %d checks %d cancels %d, want 1 0 1", s, c, x)
		}
		if r := h.run(id); r.Status != pipeline.RunCancelled || len(h.queue.take()) != 0 {
			t.Fatalf("run %s", r.Status)
		}
	})
}

// An operator's forced re-run of a waiting step cancels the work it waited
// on and starts it again in a new generation; the old checks are stale.
func TestAsyncForcedRerunCancelsTheWork(t *testing.T) {
	h := newHarness(t, chainYAML)
	j := &fakeJob{polls: 2, after: time.Minute}
	withJob(t, h, waitsYAML, j)
	id, c1 := startWaiting(t, h)
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "job"}); !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("enqueue of a waiting step without force: %v, want a conflict", err)
	}
	if _, err := h.orch.Enqueue(ctx, pipeline.EnqueueRequest{RunID: id, Step: "job", Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, x := j.counts(); x != 1 {
		t.Fatalf("cancels %d, want 1", x)
	}
	job := stepOf(h.run(id), "job")
	if job.Generation != 2 || job.Check != 0 || job.AsyncState != nil || !job.WaitingSince.IsZero() {
		t.Fatalf("new generation keeps the old wait: %+v", job)
	}
	res, err := h.orch.HandleStep(ctx, c1.Payload, pipeline.Delivery{})
	if err != nil || res.Outcome != pipeline.OutcomeStaleTask {
		t.Fatalf("old check: %+v, %v", res, err)
	}
	h.deliverTimed(20)
	if s, c, _ := j.counts(); s != 2 || c != 2 || h.run(id).Status != pipeline.RunSucceeded {
		t.Fatalf("starts %d checks %d, run %s", s, c, h.run(id).Status)
	}
}

// The sweeper recovers a lost check task: a waiting step whose check is
// overdue gets the next check queued (recorded first), and a late delivery
// of the lost one is then a harmless duplicate.
func TestAsyncSweeperRecoversALostCheck(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		j := &fakeJob{polls: 2, after: 10 * time.Minute}
		withJob(t, h, waitsYAML, j)
		id, lost := startWaiting(t, h) // never delivered: the queue lost it

		h.advance(11 * time.Minute) // due, not yet overdue
		rep, err := h.orch.Reconcile(ctx)
		if err != nil || len(rep.Reenqueued) != 0 || len(h.queue.take()) != 0 {
			t.Fatalf("sweep before the check is overdue: %+v, %v", rep, err)
		}
		h.advance(10 * time.Minute)
		rep, err = h.orch.Reconcile(ctx)
		if err != nil || len(rep.Reenqueued) != 1 || rep.Reenqueued[0] != id+"/job" {
			t.Fatalf("sweep: %+v, %v", rep, err)
		}
		got := h.queue.take()
		if len(got) != 1 || got[0].Payload.Check != 2 || !strings.HasSuffix(got[0].Name, "-c2") {
			t.Fatalf("sweep queued %+v, want check 2", got)
		}
		if _, err := h.orch.HandleStep(ctx, lost.Payload, pipeline.Delivery{}); err != nil {
			t.Fatal(err) // the lost one turns up late: only re-queues check 2
		}
		if _, c, _ := j.counts(); c != 0 {
			t.Fatalf("the late check polled (%d)", c)
		}
		h.queue.take()
		h.queue.tasks = append(h.queue.tasks, got...)
		h.deliverTimed(10)
		if r := h.run(id); r.Status != pipeline.RunSucceeded {
			t.Fatalf("run %s (%s)", r.Status, r.Error)
		}
		if s, c, _ := j.counts(); s != 1 || c != 2 {
			t.Fatalf("starts %d checks %d, want 1 2", s, c)
		}
	})
}

// The http kind with async: true waits on a local asynchronous service
// through the orchestrator, on both ledgers: the middle step waits 3 hours
// (fake clock) of checks every 30 minutes, its work started once.
func TestAsyncHTTPStepThroughTheOrchestrator(t *testing.T) {
	var mu sync.Mutex
	starts, polls := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/exports":
			starts++
			w.Header().Set("Location", "/exports/"+r.URL.Query().Get("date"))
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/exports/"):
			polls++
			if polls < 6 {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			_, _ = w.Write([]byte(`{"rows": 42, "export": "` + strings.TrimPrefix(r.URL.Path, "/exports/") + `"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	yamlText := `
name: waits
time_zone: UTC
steps:
  - {name: a, kind: a, after: []}
  - name: job
    kind: http
    timeout: 6h
    http: {url: "` + srv.URL + `/exports?date={{.Date}}", async: true, check_interval: 30m}
  - {name: c, kind: c}
`
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		mu.Lock()
		starts, polls = 0, 0
		mu.Unlock()
		h.deploy(yamlText)
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		h.deliverTimed(30)
		r := h.run(res.Run.ID)
		job := stepOf(r, "job")
		if r.Status != pipeline.RunSucceeded || job.Attempts != 1 || string(job.Output) != `{"rows":42,"export":"2026-11-23"}` {
			t.Fatalf("run %s (%s), job %+v", r.Status, r.Error, job)
		}
		if waited := job.FinishedAt.Sub(job.WaitingSince); waited < 3*time.Hour {
			t.Fatalf("waited %s", waited)
		}
		mu.Lock()
		defer mu.Unlock()
		if starts != 1 || polls != 6 {
			t.Fatalf("starts %d polls %d, want 1 6", starts, polls)
		}
	})
}

// validate (the loader) accepts an asynchronous step's timeout up to 7 days
// and names the limit beyond it.
func TestAsyncTimeoutLimitWhenLoading(t *testing.T) {
	reg := steps.NewRegistry()
	src := func(timeout string) []byte {
		return []byte("name: w\ntime_zone: UTC\nmax_run_duration: 200h\nsteps:\n  - name: job\n    kind: http\n    timeout: " + timeout +
			"\n    http: {url: \"https://jobs.example/start\", async: true}\n")
	}
	if _, err := pipeline.Parse("w.yaml", src("168h"), reg); err != nil {
		t.Fatalf("7 days: %v", err)
	}
	_, err := pipeline.Parse("w.yaml", src("169h"), reg)
	if err == nil || !strings.Contains(err.Error(), "above the 168h0m0s an asynchronous step may wait") {
		t.Fatalf("over 7 days: %v", err)
	}
}

// The JSON API shows a waiting step as waiting, with the time waited (by
// the service's clock), its next check and the link to the remote work.
func TestAPIShowsAWaitingStep(t *testing.T) {
	a := newAPI(t)
	if code, out := a.do("POST", "/pipeline/start", a.token, []byte(`{"pipeline":"chain","date":"2026-11-23"}`), nil); code != 201 {
		t.Fatalf("start = %d %v", code, out)
	}
	id := "chain@2026-11-23"
	s := stepOf(a.run(id), "a")
	since := a.clock()
	s.Status, s.Attempts, s.WaitingSince, s.NextCheckAt, s.Check, s.Link = pipeline.StepWaiting, 1, since, since.Add(time.Hour), 1, "https://jobs.example/1"
	if _, err := a.ledger.UpdateStep(ctx, s); err != nil {
		t.Fatal(err)
	}
	a.advance(90 * time.Minute)
	code, out := a.do("GET", "/pipeline/runs/"+id, a.token, nil, nil)
	if code != 200 {
		t.Fatalf("get run = %d %v", code, out)
	}
	first := out["steps"].([]any)[0].(map[string]any)
	waited, _ := first["waited_ms"].(float64)
	if first["status"] != "waiting" || first["link"] != "https://jobs.example/1" || first["next_check_at"] == nil ||
		waited < float64((90*time.Minute).Milliseconds()) || waited > float64((91*time.Minute).Milliseconds()) {
		t.Fatalf("waiting step = %v", first)
	}
}

// A failed enqueue of the first check (after the wait was recorded) answers
// 5xx; the queue's retry of the start task queues the check without starting
// the work again.
func TestAsyncCheckEnqueueFailureAfterStart(t *testing.T) {
	onEachLedger(t, chainYAML, func(t *testing.T, h *harness) {
		j := &fakeJob{polls: 1, after: time.Minute}
		withJob(t, h, waitsYAML, j)
		res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
		if err != nil {
			t.Fatal(err)
		}
		first := h.queue.take()
		if _, err := h.orch.HandleStep(ctx, first[0].Payload, pipeline.Delivery{}); err != nil {
			t.Fatal(err)
		}
		start := h.queue.take()[0]
		h.queue.failing = 1
		if _, err := h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{}); err == nil {
			t.Fatal("the check's enqueue failed but the delivery succeeded")
		}
		if job := stepOf(h.run(res.Run.ID), "job"); job.Status != pipeline.StepWaiting || len(h.queue.take()) != 0 {
			t.Fatalf("after the failed enqueue: %+v", job)
		}
		h.queue.tasks = append(h.queue.tasks, start) // the queue retries the start task
		h.deliverTimed(10)
		if s, c, _ := j.counts(); s != 1 || c != 1 || h.run(res.Run.ID).Status != pipeline.RunSucceeded {
			t.Fatalf("starts %d checks %d, run %s", s, c, h.run(res.Run.ID).Status)
		}
	})
}

// A run that exceeds its max_run_duration while a step waits stops the wait
// and cancels the remote work (the sweeper fails the run).
func TestAsyncOverdueRunStopsTheWait(t *testing.T) {
	h := newHarness(t, chainYAML)
	j := &fakeJob{polls: 100, after: time.Hour}
	withJob(t, h, strings.Replace(waitsYAML, "time_zone: UTC\n", "time_zone: UTC\nmax_run_duration: 4h\n", 1), j)
	id, c1 := startWaiting(t, h)
	h.advance(5 * time.Hour) // the check at 1h was lost: the sweeper finds the run overdue
	rep, err := h.orch.Reconcile(ctx)
	if err != nil || len(rep.FailedRuns) != 1 {
		t.Fatalf("reconcile: %+v, %v", rep, err)
	}
	r := h.run(id)
	if job := stepOf(r, "job"); r.Status != pipeline.RunFailed || job.Status != pipeline.StepSkipped || !strings.Contains(job.Error, "stopped waiting") {
		t.Fatalf("run %s, job %+v", r.Status, job)
	}
	if _, _, x := j.counts(); x != 1 {
		t.Fatalf("cancels %d, want 1", x)
	}
	if res, err := h.orch.HandleStep(ctx, c1.Payload, pipeline.Delivery{}); err != nil || res.Outcome != pipeline.OutcomeNotRunnable {
		t.Fatalf("late check: %+v, %v", res, err)
	}
}
