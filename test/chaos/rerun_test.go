package chaos

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/app"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// Scenario 9: re-run cascades (issue 11). Each run of the chain a → b, c → d
// succeeds and is then re-run in part by an operator, over the API, in five
// phases, while duplicates of old and new generations' tasks are delivered,
// the sweeper runs and a share of enqueues fails:
//
//   - only: b forced with --only; d must not run again (the sweeper may not
//     undo --only);
//   - duplicates: b forced; while b's and d's new bodies run, copies of every
//     generation's task of b, c and d arrive, and the sweeper is called;
//   - stale: b forced, and forced again while d runs on b's previous
//     output: d finishes on a superseded input and must run again (staleness
//     is decided by consumed generations, not by finish times);
//   - cancel: c forced, and the run cancelled while c's new body runs: d must
//     not start (the cascade stops at a cancel); the run is then resumed;
//   - after: copies of every generation's task of every step, the sweeper.
//
// At the end every run has succeeded; every step consumed its predecessors'
// latest generations (none stale); each generation of each step ran at most
// one body and the latest exactly one; the run's finish is no earlier than
// any step's (a finish decided on an old read would be).
func TestRerunCascades(t *testing.T) {
	sz := chaosSize(t)
	for _, backend := range backendsFor(sz, true) {
		t.Run(backend, func(t *testing.T) {
			yaml := strings.ReplaceAll(chainYAML("30ms"), "timeout: 5s", "timeout: 1m")
			driveReruns(t, sz, rerunSetup{scenario: "rerun-cascades", backend: backend, runs: sz.rerunRuns, copies: sz.rerunCopies,
				start: func(opts stackOptions) *stack { return newStack(t, backend, yaml, opts) }})
		})
	}
}

// rerunSetup is what the re-run driver (driveReruns) runs on.
type rerunSetup struct {
	scenario, backend string
	// runs are driven through the phases, with copies copies of every
	// generation's task while their cascades run.
	runs, copies int
	// skewed says the service's instances have clocks that disagree: the
	// times they wrote are not compared with one another (a run's finish
	// with its steps').
	skewed bool
	// start starts the service with opts (every instance with opts' hook
	// and wrappers) and returns the stack the driver calls (spread over
	// the instances).
	start func(opts stackOptions) *stack
	// extra adds the setup's own counts to the figures (optional).
	extra func(f *figures)
}

// Phases of a run in the re-run scenario (what its bodies' hook does).
const (
	phaseNone int32 = iota
	phaseOnly
	phaseDup
	phaseStale
	phaseCancel
)

// rerunState is one run's bookkeeping in the re-run scenario.
type rerunState struct {
	id    string
	phase atomic.Int32
	// acted is set once the phase's in-body action (the second force, the
	// cancel) was done.
	acted    atomic.Bool
	cancelAt atomic.Int64 // unix nanos of the acknowledged cancel
}

// driveReruns drives setup.runs runs through the re-run phases
// (rerunPhases), with a share of enqueues faulted, and checks and reports
// the figures of setup.scenario.
func driveReruns(t *testing.T, sz size, setup rerunSetup) {
	backend := setup.backend
	var (
		s    *stack
		led  atomic.Pointer[pipeline.Ledger] // any instance's: they share it
		mu   sync.Mutex
		gens = map[string]int{} // "run|step|gen" -> completed bodies
		runs = map[string]*rerunState{}
		// dInputs lists, per run, the inputs each completed body of d
		// consumed.
		dInputs = map[string][]string{}
		dups    atomic.Int64
	)
	d := newDice(sz.faultShare/3, uint64(time.Now().UnixNano()))
	var fqs []*faultyQueue // one per instance
	copies := func(run string, stepNames []string, n int) {
		vs, ok := s.getRun(run)
		if !ok {
			return
		}
		var wg sync.WaitGroup
		for _, st := range vs.Steps {
			if !contains(stepNames, st.Step) {
				continue
			}
			for g := 1; g <= st.Generation; g++ {
				body := []byte(fmt.Sprintf(`{"run_id":%q,"step":%q,"generation":%d,"date":"2026-11-01"}`, run, st.Step, g))
				for range n {
					wg.Go(func() {
						_, _, _ = s.do("POST", "/pipeline/steps/"+st.Step, tasksSA, body, nil)
						dups.Add(1)
					})
				}
			}
		}
		wg.Wait()
	}
	hook := func(ctx context.Context, in steps.Input) error {
		got, err := (*led.Load()).GetSteps(ctx, in.RunID, in.Step)
		if err != nil || len(got) != 1 {
			return fmt.Errorf("rerun: read %s of %s: %v", in.Step, in.RunID, err)
		}
		gen := got[0].Generation
		mu.Lock()
		rs := runs[in.RunID]
		mu.Unlock()
		if rs != nil {
			switch rs.phase.Load() {
			case phaseDup:
				if (in.Step == "b" || in.Step == "d") && gen > 1 {
					copies(in.RunID, []string{"b", "c", "d"}, setup.copies)
					_, _, _ = s.do("POST", "/pipeline/reconcile", schedulerSA, nil, nil)
				}
			case phaseStale:
				if in.Step == "d" && rs.acted.CompareAndSwap(false, true) {
					// d runs on b's output; b gets a newer one meanwhile.
					if code, body := s.operate("/pipeline/runs/"+in.RunID+"/steps/b/enqueue", `{"force":true}`); code != 200 {
						return fmt.Errorf("rerun: force b while d runs: %d %s", code, body)
					}
				}
			case phaseCancel:
				if in.Step == "c" && gen > 1 && rs.acted.CompareAndSwap(false, true) {
					if code, body := s.operate("/pipeline/runs/"+in.RunID+"/cancel", `{}`); code != 200 {
						return fmt.Errorf("rerun: cancel while c runs: %d %s", code, body)
					}
					rs.cancelAt.Store(time.Now().UnixNano())
				}
			}
		}
		if ctx.Err() == nil {
			mu.Lock()
			gens[fmt.Sprintf("%s|%s|%d", in.RunID, in.Step, gen)]++
			if in.Step == "d" { // never forced: it re-runs only on a newer input
				dInputs[in.RunID] = append(dInputs[in.RunID], fmt.Sprint(got[0].Inputs))
			}
			mu.Unlock()
		}
		return nil
	}
	opts := stackOptions{hook: hook, leaseGrace: 2 * time.Second, wrap: app.Wrappers{
		Ledger: func(l pipeline.Ledger) pipeline.Ledger { led.Store(&l); return l },
		Queue: func(q pipeline.Queue) pipeline.Queue {
			fq := &faultyQueue{inner: q, d: d}
			mu.Lock()
			fqs = append(fqs, fq)
			mu.Unlock()
			return fq
		},
	}}
	s = setup.start(opts)

	f := figures{scenario: setup.scenario, backend: backend}
	var (
		ids      []string
		problems []string
		pmu      sync.Mutex
	)
	fail := func(format string, args ...any) {
		pmu.Lock()
		defer pmu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	for i := range setup.runs {
		key := fmt.Sprintf("rr-%d", i)
		f.tried++
		if s.startRun(key) {
			id := "chaos@" + key
			ids = append(ids, id)
			mu.Lock()
			runs[id] = &rerunState{id: id}
			mu.Unlock()
		}
	}
	began := time.Now()
	var wg sync.WaitGroup
	for _, id := range ids {
		rs := runs[id]
		wg.Go(func() { rerunPhases(t, s, rs, fail, copies) })
	}
	wg.Wait()
	// Faults off: what is in flight must settle.
	d.off.Store(true)
	calm := time.Now()
	if s.emu != nil {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		_ = s.emu.WaitIdle(ctx)
		cancel()
	}
	views := waitRuns(ids, 2*time.Minute, s.getRun)
	f.recovery = time.Since(calm)
	problems = append(problems, tallyReruns(t, &f, s, ids, views)...)
	mu.Lock()
	for _, id := range ids {
		problems = append(problems, checkGenerations(&f, views[id], gens, setup.skewed)...)
		seenInputs := map[string]bool{}
		for _, in := range dInputs[id] {
			if seenInputs[in] {
				f.doubled++
				problems = append(problems, fmt.Sprintf("doubled: %s d ran again on the inputs it had consumed already (%s): a re-run without a superseded input", id, in))
			}
			seenInputs[in] = true
		}
	}
	mu.Unlock()
	var calls, before, after int64
	mu.Lock()
	for _, fq := range fqs {
		calls, before, after = calls+fq.calls.Load(), before+fq.before.Load(), after+fq.after.Load()
	}
	mu.Unlock()
	f.add("operator actions %d", setup.runs*6)
	f.add("copies %d", dups.Load())
	f.add("enqueues %d", calls)
	f.add("failed before %d", before)
	f.add("reply lost %d", after)
	f.add("took %.1fs", time.Since(began).Seconds())
	if setup.extra != nil {
		setup.extra(&f)
	}
	if len(problems) > 0 && f.doubled == 0 && f.lost == 0 && f.stuck == 0 {
		t.Errorf("%s %s: %d problems", setup.scenario, backend, len(problems))
	}
	check(t, f, problems)
}

// tallyReruns is tally over s's body log, where the re-runs are on
// purpose: a step may run once per generation.
func tallyReruns(t *testing.T, f *figures, s *stack, ids []string, views map[string]runView) []string {
	t.Helper()
	bodies, err := ReadBodies(s.bodyLog())
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]int{}
	for _, id := range ids {
		for _, st := range views[id].Steps {
			allowed[id+"|"+st.Step] = st.Generation - 1
		}
	}
	return tally(t, f, ids, views, bodies, nil, allowed)
}

// rerunPhases drives one run through the scenario's phases; fail records a
// broken promise.
func rerunPhases(t *testing.T, s *stack, rs *rerunState, fail func(string, ...any), copies func(string, []string, int)) {
	id := rs.id
	wait := func(what string, ok func(runView) bool) (runView, bool) {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if v, got := s.getRun(id); got && ok(v) {
				return v, true
			}
			time.Sleep(50 * time.Millisecond)
		}
		v, _ := s.getRun(id)
		fail("stuck: %s: %s is %s: %+v", id, what, v.Status, v.Steps)
		return v, false
	}
	succeeded := func(v runView) bool { return v.Status == "succeeded" }
	// force re-runs step as an operator would: a 5xx or a lost reply may
	// come after the force took effect (a new generation; the sweeper
	// queues the step if its task was not), so the operator looks before
	// trying again.
	force := func(step, body string) bool {
		before, ok := s.getRun(id)
		for range 20 {
			if !ok {
				break
			}
			code, out, err := s.do("POST", "/pipeline/runs/"+id+"/steps/"+step+"/enqueue", operatorSA, []byte(body), nil)
			if err == nil && code == 200 {
				return true
			}
			if err == nil && code < 500 && code != 409 {
				fail("%s: enqueue %s %s: %d %s", id, step, body, code, out)
				return false
			}
			if now, got := s.getRun(id); got && now.step(step).Generation > before.step(step).Generation {
				return true
			}
			time.Sleep(100 * time.Millisecond)
		}
		fail("%s: enqueue %s %s: no new generation after 20 tries", id, step, body)
		return false
	}
	v, ok := wait("first run", succeeded)
	if !ok {
		return
	}

	// only: b runs again alone; d is left on b's old output, even by the
	// sweeper.
	rs.phase.Store(phaseOnly)
	dGen := v.step("d").Generation
	bGen := v.step("b").Generation
	if !force("b", `{"force":true,"only":true}`) {
		return
	}
	if _, ok = wait("--only b", func(v runView) bool {
		return v.step("b").Generation > bGen && v.step("b").Status == "succeeded" && v.terminal()
	}); !ok {
		return
	}
	for range 2 {
		_, _, _ = s.do("POST", "/pipeline/reconcile", schedulerSA, nil, nil)
	}
	if v, _ = s.getRun(id); v.step("d").Generation != dGen {
		fail("doubled: %s: d ran again (generation %d → %d) after --only b: the sweeper undid --only", id, dGen, v.step("d").Generation)
	}

	// duplicates: b forced; copies of every generation while the cascade
	// runs (the hook sends them).
	rs.phase.Store(phaseDup)
	if !force("b", `{"force":true}`) {
		return
	}
	if _, ok = wait("force b", func(v runView) bool { return succeeded(v) && v.consumedLatest() }); !ok {
		return
	}

	// stale: b forced, and forced again while d runs.
	rs.phase.Store(phaseStale)
	rs.acted.Store(false)
	if !force("b", `{"force":true}`) {
		return
	}
	if _, ok = wait("force b twice", func(v runView) bool { return rs.acted.Load() && succeeded(v) && v.consumedLatest() }); !ok {
		return
	}

	// cancel: c forced, the run cancelled while c's new body runs; then
	// resumed.
	rs.phase.Store(phaseCancel)
	rs.acted.Store(false)
	if !force("c", `{"force":true}`) {
		return
	}
	// The operator waits for c's body (in flight at the cancel) to end; the
	// sweeper runs meanwhile. d must not start. The run is cancelled, or
	// running with a cancelled step when a force whose reply was lost was
	// retried after the cancel (a new force reopens the run; its cancelled
	// steps wait for a resume).
	if _, ok = wait("cancel during c", func(v runView) bool {
		return rs.acted.Load() && v.step("c").Status != "running" && v.step("c").Status != "retrying" &&
			(v.Status == "cancelled" || v.Status == "running" && v.anyStep("cancelled"))
	}); !ok {
		return
	}
	for range 2 {
		_, _, _ = s.do("POST", "/pipeline/reconcile", schedulerSA, nil, nil)
	}
	if v, _ = s.getRun(id); v.Status != "cancelled" && !v.anyStep("cancelled") {
		fail("%s: after the cancel the run is %s with no cancelled step: %+v", id, v.Status, v.Steps)
	}
	if bs, err := ReadBodies(s.bodyLog()); err == nil {
		for _, b := range bs {
			if b.RunID == id && b.Step == "d" && b.Event == "start" && b.At.UnixNano() > rs.cancelAt.Load() {
				fail("doubled: %s: d started at %s after the cancel: the cascade went on", id, b.At)
			}
		}
	}
	rs.phase.Store(phaseNone)
	// A resume whose reply was lost (a 5xx after its enqueue) did its work
	// if the run is running again (the sweeper queues what was not).
	if !s.resume(id) {
		v, _ = s.getRun(id)
		fail("%s: resume after cancel refused; run %s: %+v", id, v.Status, v.Steps)
		return
	}
	if _, ok = wait("resume", func(v runView) bool { return succeeded(v) && v.consumedLatest() }); !ok {
		return
	}

	// after: copies of every generation of every step, and the sweeper.
	copies(id, []string{"a", "b", "c", "d"}, 2)
	_, _, _ = s.do("POST", "/pipeline/reconcile", schedulerSA, nil, nil)
}

// checkGenerations fails a run (from its last view) where a generation of a
// step completed more than one body (doubled) or its latest none (lost), a
// succeeded step consumed a superseded generation (stale), the run succeeded
// with a step that did not, or (one clock: not skewed) the run's finish is
// older than a step's.
func checkGenerations(f *figures, v runView, gens map[string]int, skewed bool) []string {
	var problems []string
	for _, st := range v.Steps {
		for g := 1; g <= st.Generation; g++ {
			n := gens[fmt.Sprintf("%s|%s|%d", v.ID, st.Step, g)]
			switch {
			case n > 1:
				f.doubled += n - 1
				problems = append(problems, fmt.Sprintf("doubled: %s %s generation %d ran %d bodies", v.ID, st.Step, g, n))
			case n == 0 && g == st.Generation && st.Status == "succeeded":
				f.lost++
				problems = append(problems, fmt.Sprintf("lost: %s %s generation %d succeeded without a body", v.ID, st.Step, g))
			}
		}
	}
	if !v.consumedLatest() {
		f.stuck++
		problems = append(problems, fmt.Sprintf("stale: %s ended %s with a step on a superseded input: %+v", v.ID, v.Status, v.Steps))
	}
	for _, st := range v.Steps {
		if v.Status == "succeeded" && st.Status != "succeeded" {
			// A step (re)opened after the run's finish, or a finish decided
			// without it: the run's status lies.
			problems = append(problems, fmt.Sprintf("%s succeeded with step %s %s (generation %d): %+v", v.ID, st.Step, st.Status, st.Generation, v.Steps))
		}
		if !skewed && v.Status == "succeeded" && st.FinishedAt.After(v.FinishedAt) {
			problems = append(problems, fmt.Sprintf("%s finished at %s before its step %s (%s): a finish decided on an old read", v.ID, v.FinishedAt, st.Step, st.FinishedAt))
		}
	}
	return problems
}

// resume resumes run id as an operator would, looking after a 5xx or a
// transport error whether the run is running again before trying again, and
// trying again when told to (a step changed meanwhile).
func (s *stack) resume(id string) bool {
	for range 20 {
		code, out, err := s.do("POST", "/pipeline/runs/"+id+"/resume", operatorSA, []byte(`{}`), nil)
		if err == nil && code == 200 {
			return true
		}
		if err == nil && code == 409 && strings.Contains(string(out), "try again") {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err == nil && code < 500 {
			s.t.Logf("resume %s: %d %s", id, code, out)
			return false
		}
		if v, ok := s.getRun(id); ok && v.Status != "cancelled" && v.Status != "failed" {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// operate sends an operator action, retrying (bounded) while the service
// answers 5xx, a transport error, or a 409 that says to wait or try again.
func (s *stack) operate(path, body string) (int, []byte) {
	deadline := time.Now().Add(time.Minute)
	for {
		code, out, err := s.do("POST", path, operatorSA, []byte(body), nil)
		retry := err != nil || code >= 500 ||
			(code == 409 && (strings.Contains(string(out), "is running") || strings.Contains(string(out), "try again")))
		if !retry || time.Now().After(deadline) {
			return code, out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// anyStep says whether a step of the run has the status.
func (r runView) anyStep(status string) bool {
	for _, s := range r.Steps {
		if s.Status == status {
			return true
		}
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
