package boltledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
	"github.com/pipelinehq/pipeline/pipeline"
)

// bSucceeded records step b of the fixture's run as succeeded, so that a's
// success completes the run.
func (f *transitionFixture) bSucceeded(t *testing.T) {
	t.Helper()
	got, err := f.st.GetSteps(context.Background(), f.a.RunID, "b")
	if err != nil {
		t.Fatal(err)
	}
	b := got[0]
	b.Status, b.Attempts, b.FinishedAt = pipeline.StepSucceeded, 1, time.Now().UTC()
	if _, err := f.st.UpdateStep(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// endIfAllSucceeded is a finish decision: the run succeeds once every step
// has; seen records the run it was given.
func endIfAllSucceeded(seen *pipeline.Run) pipeline.FinishFunc {
	return func(r pipeline.Run) (pipeline.Run, bool) {
		*seen = r
		for _, s := range r.Steps {
			if s.Status != pipeline.StepSucceeded {
				return r, false
			}
		}
		now := time.Now().UTC()
		r.Status, r.FinishedAt, r.UpdatedAt, r.Notify = pipeline.RunSucceeded, now, now, pipeline.NotifyPending
		return r, true
	}
}

type finishResult struct {
	stored  pipeline.StepRun
	run     pipeline.Run
	wrote   bool
	err     error
	commits uint64
}

// deliverFinish runs the fixture's queue and answers a's delivery with
// TransitionFinish(a succeeded, the delivery, finish).
func (f *transitionFixture) deliverFinish(t *testing.T, step pipeline.StepRun, finish pipeline.FinishFunc) finishResult {
	t.Helper()
	results := make(chan finishResult, 4)
	f.handle = func(d pipeline.Task) int {
		if d.Payload.Step != "a" {
			return http.StatusOK
		}
		before := f.st.Committer().Commits()
		stored, run, wrote, err := f.st.TransitionFinish(context.Background(), step, d, finish)
		results <- finishResult{stored, run, wrote, err, f.st.Committer().Commits() - before}
		if err != nil {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	f.run(t)
	f.next(t)
	return <-results
}

func TestTransitionFinishCommitsStepRunEndAndDeletionInOneCommit(t *testing.T) {
	f := newTransitionFixture(t, nil)
	f.bSucceeded(t)
	var seen pipeline.Run
	res := f.deliverFinish(t, f.succeeded(), endIfAllSucceeded(&seen))
	if res.err != nil {
		t.Fatalf("TransitionFinish: %v", res.err)
	}
	if res.commits != 1 {
		t.Errorf("TransitionFinish made %d commits, want 1", res.commits)
	}
	// The decision saw a as written in the transaction.
	if len(seen.Steps) != 2 || seen.Steps[0].Step != "a" || seen.Steps[0].Status != pipeline.StepSucceeded || seen.Steps[0].Version != res.stored.Version {
		t.Errorf("finish was given steps %+v; want a succeeded at version %d first", seen.Steps, res.stored.Version)
	}
	if !res.wrote || res.run.Status != pipeline.RunSucceeded || len(res.run.Steps) != 2 {
		t.Errorf("returned wrote=%v run %s with %d steps; want the succeeded run written, with its steps", res.wrote, res.run.Status, len(res.run.Steps))
	}
	ctx := context.Background()
	r, err := f.st.GetRun(ctx, f.a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != pipeline.RunSucceeded || r.Version != res.run.Version || stepOf(r, "a").Status != pipeline.StepSucceeded {
		t.Errorf("stored run %s (version %d, a %s); want succeeded at version %d with a succeeded", r.Status, r.Version, stepOf(r, "a").Status, res.run.Version)
	}
	// The owed notification is indexed, as UpdateRun indexes it.
	owed, err := f.st.ListRuns(ctx, pipeline.RunFilter{NotifyPending: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(owed) != 1 || owed[0].ID != r.ID {
		t.Errorf("owed notifications %v, want the run", owed)
	}
	if p := pendingTasks(t, f.st); p[f.taskA.Name] {
		t.Errorf("a's task still stored as pending after its transition: %v", p)
	}
}

func TestTransitionFinishDeclinedWritesTheStepOnly(t *testing.T) {
	f := newTransitionFixture(t, nil)
	ctx := context.Background()
	before, err := f.st.GetRun(ctx, f.a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	var seen pipeline.Run
	res := f.deliverFinish(t, f.succeeded(), endIfAllSucceeded(&seen)) // b still pending
	if res.err != nil {
		t.Fatalf("TransitionFinish: %v", res.err)
	}
	if res.wrote || res.run.Version != before.Version || res.commits != 1 {
		t.Errorf("wrote=%v, run version %d (was %d), %d commits; want the run left alone, one commit", res.wrote, res.run.Version, before.Version, res.commits)
	}
	r, err := f.st.GetRun(ctx, f.a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != pipeline.RunRunning || r.Version != before.Version || stepOf(r, "a").Status != pipeline.StepSucceeded {
		t.Errorf("stored run %s at version %d, a %s; want running at %d, a succeeded", r.Status, r.Version, stepOf(r, "a").Status, before.Version)
	}
}

func TestTransitionFinishFailingTransactionWritesNothing(t *testing.T) {
	var fail atomic.Int32
	fail.Store(1)
	f := newTransitionFixture(t, func(w boltledger.TaskWriter) boltledger.TaskWriter { return failingWrites{w, &fail} })
	f.bSucceeded(t)
	ctx := context.Background()
	before, err := f.st.GetRun(ctx, f.a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	var seen pipeline.Run
	res := f.deliverFinish(t, f.succeeded(), endIfAllSucceeded(&seen))
	if !errors.Is(res.err, errInjected) {
		t.Fatalf("TransitionFinish: %v, want the injected failure", res.err)
	}
	r, err := f.st.GetRun(ctx, f.a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != pipeline.RunRunning || r.Version != before.Version || stepOf(r, "a").Version != f.a.Version {
		t.Errorf("a failed transaction wrote: run %s at version %d (was %d), a at version %d (was %d)", r.Status, r.Version, before.Version, stepOf(r, "a").Version, f.a.Version)
	}
}

func TestTransitionFinishLostCompareAndSwapWritesNothing(t *testing.T) {
	f := newTransitionFixture(t, nil)
	f.bSucceeded(t)
	ctx := context.Background()
	before, err := f.st.GetRun(ctx, f.a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	stale := f.succeeded()
	stale.Version-- // another write won meanwhile
	called := false
	res := f.deliverFinish(t, stale, func(r pipeline.Run) (pipeline.Run, bool) { called = true; return r, true })
	if !errors.Is(res.err, pipeline.ErrConflict) {
		t.Fatalf("TransitionFinish with a stale version: %v, want ErrConflict", res.err)
	}
	if called {
		t.Error("the finish decision ran after a lost compare-and-swap")
	}
	r, err := f.st.GetRun(ctx, f.a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != pipeline.RunRunning || r.Version != before.Version {
		t.Errorf("run %s at version %d after a lost compare-and-swap; want running at %d", r.Status, r.Version, before.Version)
	}
}

func stepOf(r pipeline.Run, name string) pipeline.StepRun {
	for _, s := range r.Steps {
		if s.Step == name {
			return s
		}
	}
	return pipeline.StepRun{}
}

// The run TransitionFinish returns is the caller's own: its decision reads
// the steps without copying them (the decode cache's records, in the shared
// commit's single writer), and they are copied after the commit. Changing
// what was returned changes nothing stored or read later.
func TestTransitionFinishReturnsStepsOfTheCallersOwn(t *testing.T) {
	f := newTransitionFixture(t, nil)
	ctx := context.Background()
	got, err := f.st.GetSteps(ctx, f.a.RunID, "b")
	if err != nil {
		t.Fatal(err)
	}
	b := got[0]
	now := time.Now().UTC()
	b.Status, b.Attempts, b.StartedAt, b.FinishedAt = pipeline.StepSucceeded, 1, now, now
	b.Output, b.Inputs = json.RawMessage(`{"n":1}`), map[string]int{"a": 1}
	if _, err := f.st.UpdateStep(ctx, b); err != nil {
		t.Fatal(err)
	}
	// Read once, so that b's record is the decode cache's either way.
	if _, err := f.st.GetRun(ctx, f.a.RunID); err != nil {
		t.Fatal(err)
	}
	var seen pipeline.Run
	res := f.deliverFinish(t, f.succeeded(), endIfAllSucceeded(&seen))
	if res.err != nil || !res.wrote {
		t.Fatalf("TransitionFinish: wrote=%v, %v; want the run ended", res.wrote, res.err)
	}
	rb := stepOf(res.run, "b")
	if string(rb.Output) != `{"n":1}` || rb.Inputs["a"] != 1 || len(rb.History) == 0 {
		t.Fatalf("returned b: output %s, inputs %v, history %v; want it as written", rb.Output, rb.Inputs, rb.History)
	}
	rb.Output[1] = 'X'
	rb.Inputs["a"] = 99
	rb.History[0].Error = "changed by the caller"

	after, err := f.st.GetRun(ctx, f.a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	ab := stepOf(after, "b")
	if string(ab.Output) != `{"n":1}` || ab.Inputs["a"] != 1 || ab.History[0].Error != "" {
		t.Errorf("b read after the caller changed the returned run: output %s, inputs %v, history error %q; want it as stored", ab.Output, ab.Inputs, ab.History[0].Error)
	}
}
