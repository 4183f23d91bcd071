package chaos

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// Scenario 12: operator actions (issue 10.4) under duplicate deliveries (N
// copies of every step task while its body runs), a share of enqueues
// failing before or after reaching the queue, and the sweeper:
//
//   - backfill: a date range with max_parallel 2, requested twice at once;
//     runs start oldest date first and never more than 2 run at a time
//     (from the ledger's start and finish times);
//   - --only: a step of a new run enqueued alone; its successors do not
//     run (not even by the sweeper) until a plain enqueue of one of them,
//     after which the run finishes;
//   - a failed run: step b fails for good; the run fails; copies of its
//     steps' tasks and a plain enqueue of d are refused (no body) until a
//     resume, after which the run finishes;
//   - a cancelled run: cancelled while b runs, then resumed.
//
// Each body runs once (b of a failed run once more after the resume).
func TestOperatorActions(t *testing.T) {
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, false) {
		t.Run(backend, func(t *testing.T) { operatorActions(t, backend, sz) })
	}
}

func operatorActions(t *testing.T, backend string, sz size) {
	var (
		s       *stack
		led     pipeline.Ledger
		failing sync.Map // run ID -> true while its b must fail
		cancel  sync.Map // run ID -> chan struct{} closed once cancelled
		copiesN atomic.Int64
	)
	d := newDice(sz.faultShare/3, uint64(time.Now().UnixNano()))
	var fq *faultyQueue
	copies := func(in steps.Input, gen int) {
		body := []byte(fmt.Sprintf(`{"run_id":%q,"step":%q,"generation":%d,"date":%q}`, in.RunID, in.Step, gen, in.DateString()))
		var wg sync.WaitGroup
		for range sz.opCopies {
			wg.Go(func() {
				_, _, _ = s.do("POST", "/pipeline/steps/"+in.Step, tasksSA, body, nil)
				copiesN.Add(1)
			})
		}
		wg.Wait()
	}
	hook := func(ctx context.Context, in steps.Input) error {
		got, err := led.GetSteps(ctx, in.RunID, in.Step)
		if err != nil || len(got) != 1 {
			return fmt.Errorf("operator: read %s of %s: %v", in.Step, in.RunID, err)
		}
		copies(in, got[0].Generation)
		if _, ok := failing.Load(in.RunID); ok {
			switch {
			case in.Step == "b":
				return steps.Permanent(errors.New("chaos: b fails for good"))
			case in.Step == "c" && in.Generation == 1 && in.Attempt == 1:
				// c's first attempt outlives its run: it fails, for now,
				// once b has failed the run, so c is left with an attempt
				// behind it in a failed run.
				if err := waitRunStatus(ctx, led, in.RunID, pipeline.RunFailed); err != nil {
					return fmt.Errorf("operator: c waits for its run to fail: %w", err)
				}
				return errors.New("chaos: c fails once its run has failed")
			}
		}
		if ch, ok := cancel.Load(in.RunID); ok && in.Step == "b" {
			cancel.Delete(in.RunID)
			if code, out := s.operate("/pipeline/runs/"+in.RunID+"/cancel", `{}`); code != 200 {
				return fmt.Errorf("operator: cancel while b runs: %d %s", code, out)
			}
			close(ch.(chan struct{}))
		}
		return nil
	}
	opts := stackOptions{hook: hook, leaseGrace: 2 * time.Second, wrap: app.Wrappers{
		Ledger: func(l pipeline.Ledger) pipeline.Ledger { led = l; return l },
		Queue: func(q pipeline.Queue) pipeline.Queue {
			fq = &faultyQueue{inner: q, d: d}
			return fq
		},
	}}
	yaml := strings.ReplaceAll(chainYAML("20ms"), "timeout: 5s", "timeout: 1m")
	s = newStack(t, backend, yaml, opts)
	f := figures{scenario: "operator-actions", backend: backend}
	var (
		pmu      sync.Mutex
		problems []string
		ids      []string
	)
	fail := func(format string, args ...any) {
		pmu.Lock()
		defer pmu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	addID := func(id string) {
		pmu.Lock()
		defer pmu.Unlock()
		ids = append(ids, id)
		f.tried++
	}
	began := time.Now()
	var wg sync.WaitGroup

	// Backfill, requested twice at once (an operator's retry).
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, sz.backfillDays-1)
	var backfillIDs []string
	for i := range sz.backfillDays {
		id := "chaos@" + from.AddDate(0, 0, i).Format(time.DateOnly)
		backfillIDs = append(backfillIDs, id)
		addID(id)
	}
	for range 2 {
		wg.Go(func() {
			req := fmt.Sprintf(`{"pipeline":"chaos","from":%q,"to":%q,"max_parallel":2}`, from.Format(time.DateOnly), to.Format(time.DateOnly))
			if code, out := s.operate("/pipeline/backfill", req); code != 200 {
				fail("backfill: %d %s", code, out)
			}
		})
	}
	for i := range sz.opRuns {
		only, failed, cancelled := fmt.Sprintf("chaos@2026-09-%02d", i+1), fmt.Sprintf("chaos@failed-%d", i), fmt.Sprintf("chaos@cancelled-%d", i)
		addID(only)
		addID(failed)
		addID(cancelled)
		wg.Go(func() { operatorOnly(s, only, fail) })
		wg.Go(func() { operatorFailed(s, failed, &failing, fail) })
		wg.Go(func() { operatorCancelled(s, cancelled, &cancel, fail) })
	}
	wg.Wait()
	d.off.Store(true)
	calm := time.Now()
	if s.emu != nil {
		ctx, stop := context.WithTimeout(t.Context(), time.Minute)
		_ = s.emu.WaitIdle(ctx)
		stop()
	}
	views := waitRuns(ids, 2*time.Minute, s.getRun)
	f.recovery = time.Since(calm)
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	problems = append(problems, tally(t, &f, ids, views, bodies, nil, nil)...)
	problems = append(problems, backfillOrder(backfillIDs, views, 2)...)
	f.add("backfill %d dates, max_parallel 2", sz.backfillDays)
	f.add("copies %d", copiesN.Load())
	f.add("enqueues %d", fq.calls.Load())
	f.add("failed before %d", fq.before.Load())
	f.add("reply lost %d", fq.after.Load())
	f.add("took %.1fs", time.Since(began).Seconds())
	if len(problems) > 0 && f.lost+f.doubled+f.stuck == 0 {
		t.Errorf("operator-actions %s: %d problems", backend, len(problems))
	}
	check(t, f, problems)
	if t.Failed() {
		for _, b := range bodies {
			if strings.Contains(b.RunID, "failed-") || strings.Contains(b.RunID, "cancelled-") {
				t.Logf("body %s %s %s attempt %d at %s", b.Event, b.RunID, b.Step, b.Attempt, b.At.Format("15:04:05.000"))
			}
		}
	}
}

// backfillOrder checks, from the ledger's times, that the backfill's runs
// (ids, oldest date first) started in date order and that no more than max
// ran at once.
func backfillOrder(ids []string, views map[string]runView, max int) []string {
	var problems []string
	for i := 1; i < len(ids); i++ {
		a, b := views[ids[i-1]], views[ids[i]]
		if b.StartedAt.Before(a.StartedAt) {
			problems = append(problems, fmt.Sprintf("backfill order: %s started at %s, before %s (%s)", ids[i], b.StartedAt, ids[i-1], a.StartedAt))
		}
	}
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, id := range ids {
		v := views[id]
		edges = append(edges, edge{v.StartedAt, 1}, edge{v.FinishedAt, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta // an end frees its slot first
		}
		return edges[i].at.Before(edges[j].at)
	})
	n := 0
	for _, e := range edges {
		n += e.delta
		if n > max {
			problems = append(problems, fmt.Sprintf("backfill capacity: %d runs at once at %s, max_parallel %d", n, e.at, max))
			break
		}
	}
	return problems
}

// waitView polls run id until ok holds (2 minutes at most).
func waitView(s *stack, id, what string, ok func(runView) bool, fail func(string, ...any)) (runView, bool) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if v, got := s.getRun(id); got && ok(v) {
			return v, true
		}
		time.Sleep(50 * time.Millisecond)
	}
	v, _ := s.getRun(id)
	fail("stuck: %s: %s: run %s: %+v", id, what, v.Status, v.Steps)
	return v, false
}

// operatorOnly: a of a new run enqueued with --only; nothing else runs, even
// with the sweeper; then a plain enqueue of b lets the run finish.
func operatorOnly(s *stack, id string, fail func(string, ...any)) {
	if code, out := s.operate("/pipeline/runs/"+id+"/steps/a/enqueue", `{"only":true}`); code != 200 && !alreadyDone(code, out) {
		fail("%s: enqueue --only a: %d %s", id, code, out)
		return
	}
	if _, ok := waitView(s, id, "--only a", func(v runView) bool { return v.step("a").Status == "succeeded" }, fail); !ok {
		return
	}
	for range 2 {
		_, _, _ = s.do("POST", "/pipeline/reconcile", schedulerSA, nil, nil)
	}
	if n := bodiesOf(s, id, "b", "c", "d"); n > 0 {
		fail("doubled: %s: %d bodies of b, c, d after --only a (the sweeper undid --only)", id, n)
	}
	// A retry after a lost reply (5xx) may find b already succeeded: the
	// first call did its work.
	if code, out := s.operate("/pipeline/runs/"+id+"/steps/b/enqueue", `{}`); code != 200 && !alreadyDone(code, out) {
		fail("%s: enqueue b: %d %s", id, code, out)
		return
	}
	waitView(s, id, "after enqueue b", func(v runView) bool { return v.Status == "succeeded" }, fail)
}

// operatorFailed: b fails for good; the run fails; copies of b's and d's
// tasks and an enqueue of d are refused until a resume.
func operatorFailed(s *stack, id string, failing *sync.Map, fail func(string, ...any)) {
	failing.Store(id, true)
	key := strings.TrimPrefix(id, "chaos@")
	if !s.startRun(key) {
		fail("%s: not started", id)
		return
	}
	// The run failed; c's first attempt fails after that (see the hook):
	// wait until it is recorded, so that c has an attempt behind it.
	if _, ok := waitView(s, id, "failing b, then c's first attempt", func(v runView) bool {
		return v.Status == "failed" && v.step("c").Attempts > 0 && v.step("c").Status != "running"
	}, fail); !ok {
		return
	}
	before := bodiesOf(s, id, "b", "c", "d")
	for _, st := range []string{"b", "c", "d"} {
		body := []byte(fmt.Sprintf(`{"run_id":%q,"step":%q,"generation":1,"date":"2026-11-01"}`, id, st))
		for range 3 {
			_, _, _ = s.do("POST", "/pipeline/steps/"+st, tasksSA, body, nil)
		}
	}
	if code, out := s.operate("/pipeline/runs/"+id+"/steps/d/enqueue", `{}`); code != 409 {
		fail("%s: enqueue d of a failed run: %d %s; want 409 (b has not succeeded)", id, code, out)
	}
	_, _, _ = s.do("POST", "/pipeline/reconcile", schedulerSA, nil, nil)
	if after := bodiesOf(s, id, "b", "c", "d"); after != before {
		fail("doubled: %s: %d more bodies of b, c, d in a failed run before its resume", id, after-before)
	}
	if v, _ := s.getRun(id); v.Status != "failed" {
		fail("%s: a failed run became %s without a resume", id, v.Status)
	}
	failing.Delete(id)
	if !s.resume(id) {
		fail("%s: resume refused", id)
		return
	}
	waitView(s, id, "resume", func(v runView) bool { return v.Status == "succeeded" }, fail)
}

// waitRunStatus polls the ledger until run id has status want, for at most
// 30 s or until ctx ends.
func waitRunStatus(ctx context.Context, led pipeline.Ledger, id string, want pipeline.RunStatus) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		r, err := led.GetRun(ctx, id)
		if err == nil && r.Status == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("run %s is %s, not %s: %w", id, r.Status, want, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// operatorCancelled: cancelled while b runs, then resumed.
func operatorCancelled(s *stack, id string, cancel *sync.Map, fail func(string, ...any)) {
	ch := make(chan struct{})
	cancel.Store(id, ch)
	if !s.startRun(strings.TrimPrefix(id, "chaos@")) {
		fail("%s: not started", id)
		return
	}
	select {
	case <-ch:
	case <-time.After(2 * time.Minute):
		fail("stuck: %s: b never ran to be cancelled", id)
		return
	}
	if _, ok := waitView(s, id, "cancel", func(v runView) bool {
		return v.Status == "cancelled" && v.step("b").Status != "running" && v.step("b").Status != "retrying"
	}, fail); !ok {
		return
	}
	_, _, _ = s.do("POST", "/pipeline/reconcile", schedulerSA, nil, nil)
	if n := bodiesOf(s, id, "d"); n > 0 {
		fail("doubled: %s: d ran in a cancelled run", id)
	}
	if !s.resume(id) {
		fail("%s: resume refused", id)
		return
	}
	waitView(s, id, "resume", func(v runView) bool { return v.Status == "succeeded" }, fail)
}

// alreadyDone says whether an enqueue's answer is the 409 a retry gets when
// its first call (whose reply was lost) already ran the step.
func alreadyDone(code int, out []byte) bool {
	return code == 409 && strings.Contains(string(out), "already succeeded")
}

// bodiesOf counts the bodies started for the named steps of run id.
func bodiesOf(s *stack, id string, names ...string) int {
	bs, err := ReadBodies(s.bodyLog())
	if err != nil {
		return -1
	}
	n := 0
	for _, b := range bs {
		if b.RunID == id && b.Event == "start" && contains(names, b.Step) {
			n++
		}
	}
	return n
}
