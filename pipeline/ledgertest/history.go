package ledgertest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// wantAttempt is what a history entry must hold.
type wantAttempt struct {
	n, gen         int
	status         pipeline.StepStatus
	start, waiting time.Time
	end            time.Time
	err            string
}

// checkHistory compares a step's history with want, entry by entry.
func checkHistory(t *testing.T, what string, got pipeline.StepRun, want ...wantAttempt) {
	t.Helper()
	if len(got.History) != len(want) {
		t.Fatalf("%s: history has %d attempts, want %d: %+v", what, len(got.History), len(want), got.History)
	}
	for i, w := range want {
		g := got.History[i]
		if g.N != w.n || g.Generation != w.gen || g.Status != w.status || g.Error != w.err ||
			!sameTime(g.StartedAt, w.start) || !sameTime(g.WaitingSince, w.waiting) || !sameTime(g.FinishedAt, w.end) {
			t.Errorf("%s: History[%d] = %+v, want %+v", what, i, g, w)
		}
	}
}

// writeAndCheck writes s and checks that the write's result, GetSteps and
// GetRun all show the history want: it is stored by the write itself.
func writeAndCheck(ctx context.Context, t *testing.T, l pipeline.Ledger, what string, s pipeline.StepRun, want ...wantAttempt) pipeline.StepRun {
	t.Helper()
	got := mustUpdateStep(ctx, t, l, s)
	checkHistory(t, what+": UpdateStep result", got, want...)
	checkHistory(t, what+": GetSteps", mustGetStep(ctx, t, l, s.RunID, s.Step), want...)
	for _, rs := range mustGetRun(ctx, t, l, s.RunID).Steps {
		if rs.Step == s.Step {
			checkHistory(t, what+": GetRun", rs, want...)
		}
	}
	return got
}

func (s suite) testHistory(t *testing.T) {
	t.Run("every attempt is kept, written with its start and end", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		mustCreate(ctx, t, l, r, newSteps(r.ID, "extract", "load"))
		v0 := mustGetStep(ctx, t, l, r.ID, "extract")
		checkHistory(t, "a pending step", v0)

		t1, t2, t3, t4 := at(time.Second), at(2*time.Second), at(5*time.Second), at(9*time.Second)
		claim := v0
		claim.Status, claim.Attempts, claim.StartedAt, claim.LeaseUntil, claim.UpdatedAt = pipeline.StepRunning, 1, t1, at(time.Minute), t1
		v1 := writeAndCheck(ctx, t, l, "attempt 1 started", claim,
			wantAttempt{n: 1, gen: 1, status: pipeline.StepRunning, start: t1})

		fail := v1
		fail.Status, fail.FinishedAt, fail.UpdatedAt, fail.LeaseUntil, fail.Error = pipeline.StepRetrying, t2, t2, time.Time{}, "HTTP 503 from the warehouse"
		first := wantAttempt{n: 1, gen: 1, status: pipeline.StepRetrying, start: t1, end: t2, err: "HTTP 503 from the warehouse"}
		v2 := writeAndCheck(ctx, t, l, "attempt 1 failed", fail, first)

		// The second attempt's record still carries the first one's error
		// (the orchestrator keeps it while running): its entry does not.
		claim2 := v2
		claim2.Status, claim2.Attempts, claim2.StartedAt, claim2.FinishedAt, claim2.UpdatedAt = pipeline.StepRunning, 2, t3, time.Time{}, t3
		v3 := writeAndCheck(ctx, t, l, "attempt 2 started", claim2, first,
			wantAttempt{n: 2, gen: 1, status: pipeline.StepRunning, start: t3})

		done := v3
		done.Status, done.FinishedAt, done.UpdatedAt, done.Error, done.Output = pipeline.StepSucceeded, t4, t4, "", output("x")
		second := wantAttempt{n: 2, gen: 1, status: pipeline.StepSucceeded, start: t3, end: t4}
		v4 := writeAndCheck(ctx, t, l, "attempt 2 succeeded", done, first, second)

		// A later write that keeps the attempt's end leaves its entry alone.
		touch := v4
		touch.UpdatedAt = at(time.Hour)
		v5 := writeAndCheck(ctx, t, l, "a write after the end", touch, first, second)

		// An operator's re-run: a new generation, reset, then its attempt.
		rerun := v5
		rerun.Status, rerun.Generation, rerun.Attempts, rerun.Output = pipeline.StepPending, 2, 0, nil
		rerun.StartedAt, rerun.FinishedAt = time.Time{}, time.Time{}
		v6 := writeAndCheck(ctx, t, l, "re-run reset", rerun, first, second)
		t5 := at(2 * time.Hour)
		claim3 := v6
		claim3.Status, claim3.Attempts, claim3.StartedAt, claim3.UpdatedAt = pipeline.StepRunning, 1, t5, t5
		writeAndCheck(ctx, t, l, "generation 2 started", claim3, first, second,
			wantAttempt{n: 1, gen: 2, status: pipeline.StepRunning, start: t5})

		// The other step was not touched.
		checkHistory(t, "the other step", mustGetStep(ctx, t, l, r.ID, "load"))
	})

	t.Run("an asynchronous attempt keeps its wait", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		mustCreate(ctx, t, l, r, newSteps(r.ID, "job"))
		cur := mustGetStep(ctx, t, l, r.ID, "job")
		t1, t2, t3 := at(time.Second), at(3*time.Second), at(time.Hour)
		cur.Status, cur.Attempts, cur.StartedAt, cur.UpdatedAt = pipeline.StepRunning, 1, t1, t1
		cur = mustUpdateStep(ctx, t, l, cur)
		cur.Status, cur.WaitingSince, cur.Check, cur.UpdatedAt = pipeline.StepWaiting, t2, 1, t2
		cur = writeAndCheck(ctx, t, l, "waiting", cur,
			wantAttempt{n: 1, gen: 1, status: pipeline.StepWaiting, start: t1, waiting: t2})
		cur.Status, cur.FinishedAt, cur.UpdatedAt, cur.Check = pipeline.StepSucceeded, t3, t3, 7
		writeAndCheck(ctx, t, l, "done waiting", cur,
			wantAttempt{n: 1, gen: 1, status: pipeline.StepSucceeded, start: t1, waiting: t2, end: t3})
	})

	t.Run("bounded: the last attempts and a truncated error", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		steps := newSteps(r.ID, "flaky")
		steps[0].MaxAttempts = 100
		mustCreate(ctx, t, l, r, steps)
		cur := mustGetStep(ctx, t, l, r.ID, "flaky")
		long := strings.Repeat("é", pipeline.MaxAttemptError) // twice the bound in bytes
		const attempts = pipeline.MaxHistory + 5
		for n := 1; n <= attempts; n++ {
			start, end := at(time.Duration(n)*time.Minute), at(time.Duration(n)*time.Minute+time.Second)
			cur.Status, cur.Attempts, cur.StartedAt, cur.FinishedAt, cur.UpdatedAt = pipeline.StepRunning, n, start, time.Time{}, start
			cur = mustUpdateStep(ctx, t, l, cur)
			cur.Status, cur.FinishedAt, cur.UpdatedAt, cur.Error = pipeline.StepRetrying, end, end, fmt.Sprintf("attempt %d: %s", n, long)
			cur = mustUpdateStep(ctx, t, l, cur)
		}
		got := mustGetStep(ctx, t, l, r.ID, "flaky")
		if len(got.History) != pipeline.MaxHistory {
			t.Fatalf("history keeps %d attempts, want %d", len(got.History), pipeline.MaxHistory)
		}
		for i, a := range got.History {
			if want := attempts - pipeline.MaxHistory + 1 + i; a.N != want {
				t.Errorf("History[%d].N = %d, want %d (the oldest are dropped)", i, a.N, want)
			}
			if len(a.Error) > pipeline.MaxAttemptError || !strings.HasPrefix(a.Error, fmt.Sprintf("attempt %d: é", a.N)) || !strings.HasSuffix(a.Error, "…") {
				t.Errorf("History[%d].Error is %d bytes %q, want at most %d, cut with …", i, len(a.Error), a.Error[:min(40, len(a.Error))], pipeline.MaxAttemptError)
			}
		}
		if !strings.HasPrefix(got.Error, "attempt 25: ") || len(got.Error) <= pipeline.MaxAttemptError {
			t.Errorf("the step's own Error was cut too: %d bytes", len(got.Error))
		}
	})
}
