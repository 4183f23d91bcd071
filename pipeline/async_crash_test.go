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
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// idJob is an asynchronous kind over a remote API that takes a
// client-chosen job ID (as BigQuery and Cloud Run executions do): Start
// derives the ID from the run, step, generation and attempt, and a start
// whose ID exists adopts the existing job instead of creating another.
type idJob struct {
	mu      sync.Mutex
	jobs    map[string]int // job ID -> checks answered
	starts  int
	created int
	polls   int
}

var _ steps.AsyncStep = (*idJob)(nil)

func (j *idJob) Run(context.Context, steps.Input) (json.RawMessage, error) {
	return nil, errors.New("an asynchronous step is never run synchronously")
}

func (j *idJob) Start(_ context.Context, in steps.Input) (steps.Poll, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.starts++
	id := fmt.Sprintf("%s-%s-g%d-a%d", in.Key(), in.Step, in.Generation, in.Attempt)
	if j.jobs == nil {
		j.jobs = map[string]int{}
	}
	if _, ok := j.jobs[id]; !ok {
		j.jobs[id] = 0
		j.created++
	}
	st, _ := json.Marshal(jobState{Job: id})
	return steps.Poll{State: st, After: time.Minute, Link: "https://jobs.example/" + id}, nil
}

func (j *idJob) Check(_ context.Context, _ steps.Input, state json.RawMessage) (steps.Poll, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var st jobState
	if err := json.Unmarshal(state, &st); err != nil {
		return steps.Poll{}, steps.Permanent(err)
	}
	j.jobs[st.Job]++
	if j.jobs[st.Job] >= j.polls {
		return steps.Poll{Done: true, Output: json.RawMessage(`{"job":"` + st.Job + `"}`)}, nil
	}
	return steps.Poll{State: state, After: time.Minute}, nil
}

func (j *idJob) counts() (starts, created int, ids []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for id := range j.jobs {
		ids = append(ids, id)
	}
	return j.starts, j.created, ids
}

// crashLedger loses the write that records an asynchronous step's wait
// while crashes > 0: the process died after Start returned and before the
// state was recorded (the step stays running under its lease).
type crashLedger struct {
	pipeline.Ledger
	crashes atomic.Int32
}

func (l *crashLedger) UpdateStep(ctx context.Context, s pipeline.StepRun) (pipeline.StepRun, error) {
	if s.Status == pipeline.StepWaiting && s.Check == 1 && l.crashes.Load() > 0 {
		l.crashes.Add(-1)
		return pipeline.StepRun{}, errors.New("crash: the process died before recording the wait")
	}
	return l.Ledger.UpdateStep(ctx, s)
}

// deliverStart delivers a of the waits run, then returns the job's start
// task (undelivered).
func deliverStart(t *testing.T, h *harness) (string, pipeline.Task) {
	t.Helper()
	res, err := h.orch.Start(ctx, pipeline.StartRequest{Pipeline: "waits", Date: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	first := h.queue.take()
	if _, err := h.orch.HandleStep(ctx, first[0].Payload, pipeline.Delivery{}); err != nil {
		t.Fatal(err)
	}
	start := h.queue.take()
	if len(start) != 1 || start[0].Payload.Step != "job" {
		t.Fatalf("after a: %+v", start)
	}
	return res.Run.ID, start[0]
}

// A crash between Start and recording its state: the step stays running
// under the start's lease (a redelivery meanwhile starts nothing); once the
// lease expires the redelivery starts again within the same attempt, so a
// kind with a deterministic job ID adopts the job the lost start created:
// one remote job, one attempt used, the run completes.
func TestAsyncCrashBetweenStartAndRecord(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		cl := &crashLedger{Ledger: led}
		h := newHarnessOn(t, chainYAML, cl)
		j := &idJob{polls: 3}
		h.reg.Register("job", func(map[string]any) (steps.Step, error) { return j, nil })
		h.deploy(strings.Replace(waitsYAML, "max_attempts: 2", "max_attempts: 1", 1))
		id, start := deliverStart(t, h)

		cl.crashes.Store(1)
		if _, err := h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{}); err == nil {
			t.Fatal("the wait was not recorded but the delivery succeeded")
		}
		job := stepOf(h.run(id), "job")
		if job.Status != pipeline.StepRunning || job.Attempts != 1 || len(job.AsyncState) != 0 {
			t.Fatalf("after the crash: %+v", job)
		}
		// The queue redelivers at once: the start's lease holds it off.
		if _, err := h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{}); !errors.Is(err, pipeline.ErrLeaseHeld) {
			t.Fatalf("redelivery under the lease: %v, want the lease held", err)
		}
		if s, _, _ := j.counts(); s != 1 {
			t.Fatalf("%d starts under the lease, want 1", s)
		}
		// After the lease: the same attempt starts again and adopts the job.
		h.advance(pipeline.AsyncRequestTimeout + time.Minute)
		res, err := h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{})
		if err != nil || res.Outcome != pipeline.OutcomeWaiting {
			t.Fatalf("redelivery after the lease: %+v, %v", res, err)
		}
		h.deliverTimed(20)
		r := h.run(id)
		job = stepOf(r, "job")
		starts, created, ids := j.counts()
		if r.Status != pipeline.RunSucceeded || job.Attempts != 1 {
			t.Fatalf("run %s (%s), job %+v", r.Status, r.Error, job)
		}
		if starts != 2 || created != 1 || len(ids) != 1 || ids[0] != "2026-11-23-job-g1-a1" {
			t.Fatalf("starts %d, remote jobs created %d %v; want 2 starts adopting one job", starts, created, ids)
		}
		if n := h.bodies["c"].runs.Load(); n != 1 {
			t.Fatalf("c ran %d times", n)
		}
	})
}

// Starts that keep crashing do not loop forever: the step's timeout, counted
// from the attempt's first start, bounds them; the delivery after it fails
// the step (and the run) saying why.
func TestAsyncCrashingStartsEndAtTheTimeout(t *testing.T) {
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		cl := &crashLedger{Ledger: led}
		h := newHarnessOn(t, chainYAML, cl)
		j := &idJob{polls: 1}
		h.reg.Register("job", func(map[string]any) (steps.Step, error) { return j, nil })
		h.deploy(strings.Replace(waitsYAML, "timeout: 4h", "timeout: 10m", 1))
		id, start := deliverStart(t, h)
		cl.crashes.Store(1000)
		var res pipeline.StepResult
		for n := 0; ; n++ {
			if n > 20 {
				t.Fatalf("still starting after %d crashes: %+v", n, stepOf(h.run(id), "job"))
			}
			var err error
			res, err = h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{})
			if err == nil {
				break
			}
			h.advance(pipeline.AsyncRequestTimeout + time.Minute)
		}
		r := h.run(id)
		job := stepOf(r, "job")
		if res.Outcome != pipeline.OutcomeFailed || job.Status != pipeline.StepFailed || r.Status != pipeline.RunFailed ||
			!strings.Contains(job.Error, "timeout") || job.Attempts != 1 {
			t.Fatalf("outcome %s, run %s, job %+v", res.Outcome, r.Status, job)
		}
		if s, created, _ := j.counts(); created != 1 || s < 3 {
			t.Fatalf("starts %d, jobs created %d; want repeated starts adopting one job", s, created)
		}
	})
}

// The http kind's remote API takes no job ID: after a crash between the
// start and recording it, the same attempt sends the start again with the
// same X-Pipeline-Attempt-Key, so a service that deduplicates on it runs
// one export (the documented window, closed by the service).
func TestAsyncHTTPCrashRepeatsTheStartWithTheSameKey(t *testing.T) {
	var mu sync.Mutex
	posts, keys, exports := 0, map[string]string{}, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPost:
			posts++
			key := r.Header.Get("X-Pipeline-Attempt-Key")
			if _, ok := keys[key]; !ok {
				exports++
				keys[key] = fmt.Sprintf("/exports/%d", exports)
			}
			w.Header().Set("Location", keys[key])
			w.WriteHeader(http.StatusAccepted)
		default:
			_, _ = w.Write([]byte(`{"export":"` + r.URL.Path + `"}`))
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
    timeout: 1h
    max_attempts: 1
    http: {url: "` + srv.URL + `/exports", async: true, check_interval: 1m}
  - {name: c, kind: c}
`
	onEachLedgerStore(t, func(t *testing.T, led pipeline.Ledger) {
		mu.Lock()
		posts, keys, exports = 0, map[string]string{}, 0
		mu.Unlock()
		cl := &crashLedger{Ledger: led}
		h := newHarnessOn(t, chainYAML, cl)
		h.deploy(yamlText)
		id, start := deliverStart(t, h)
		cl.crashes.Store(1)
		if _, err := h.orch.HandleStep(ctx, start.Payload, pipeline.Delivery{}); err == nil {
			t.Fatal("the wait was not recorded but the delivery succeeded")
		}
		h.advance(pipeline.AsyncRequestTimeout + time.Minute)
		h.queue.tasks = append(h.queue.tasks, start)
		h.deliverTimed(10)
		r := h.run(id)
		job := stepOf(r, "job")
		if r.Status != pipeline.RunSucceeded || job.Attempts != 1 || string(job.Output) != `{"export":"/exports/1"}` {
			t.Fatalf("run %s (%s), job %+v", r.Status, r.Error, job)
		}
		mu.Lock()
		defer mu.Unlock()
		if posts != 2 || exports != 1 || len(keys) != 1 {
			t.Fatalf("posts %d, exports %d, keys %v; want the start sent twice with one key", posts, exports, keys)
		}
		if _, ok := keys[id+"/job/g1/a1"]; !ok {
			t.Fatalf("keys %v", keys)
		}
	})
}
