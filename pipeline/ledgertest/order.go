package ledgertest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// pageAll lists f page by page (Limit per page) with Next, as the sweeper
// does, and returns every run it saw.
func pageAll(t *testing.T, l pipeline.Ledger, f pipeline.RunFilter) []pipeline.Run {
	t.Helper()
	var all []pipeline.Run
	for range 100 {
		page, err := l.ListRuns(t.Context(), f)
		if err != nil {
			t.Fatalf("ListRuns(%+v): %v", f, err)
		}
		all = append(all, page...)
		if len(page) < f.Limit {
			return all
		}
		f = f.Next(page[len(page)-1])
	}
	t.Fatalf("ListRuns(%+v): more than 100 pages", f)
	return nil
}

func checkPaged(t *testing.T, l pipeline.Ledger, runs []pipeline.Run, f pipeline.RunFilter) {
	t.Helper()
	got := pageAll(t, l, f)
	all := f
	all.Limit = len(runs) + 1
	want := expected(runs, all)
	if g, w := runIDsOf(got), runIDsOf(want); !slices.Equal(g, w) {
		t.Errorf("ListRuns(%+v) paged:\n got %v\nwant %v", f, g, w)
	}
}

// testListOrder checks OldestFirst and Cursor: a listing paged with Next
// reaches every matching run exactly once, in order, even when runs share a
// creation time.
func (s suite) testListOrder(t *testing.T) {
	ctx, l := t.Context(), s.newLedger(t)
	base := farFuture(t)
	pA, pB := uniqueName(t), uniqueName(t)
	var runs []pipeline.Run
	// Creation offsets with ties (several runs in the same microsecond),
	// created out of order.
	offsets := []int{5, 0, 3, 3, 3, 7, 1, 0, 9, 3, 6, 2}
	for i, off := range offsets {
		p := pA
		if i%4 == 3 {
			p = pB
		}
		r := newRun(p, fmt.Sprintf("k%02d", i), base.Add(time.Duration(off)*tick))
		if i%3 == 0 {
			r.Status = pipeline.RunRunning
		}
		stored := mustCreate(ctx, t, l, r, newSteps(r.ID, "a"))
		r.Version = stored.Version
		runs = append(runs, r)
	}
	for _, f := range []pipeline.RunFilter{
		{Since: base, OldestFirst: true},
		{Pipeline: pA, OldestFirst: true},
		{Pipeline: pA, Status: pipeline.RunPending, OldestFirst: true},
		{Since: base, Status: pipeline.RunRunning, OldestFirst: true},
		{Since: base.Add(3 * tick), Before: base.Add(7 * tick), OldestFirst: true},
		{Since: base, OldestFirst: true, Limit: 4},
		{Since: base, Cursor: &pipeline.RunCursor{At: base.Add(3 * tick), RunID: runs[3].ID}, OldestFirst: true},
		{Since: base, Cursor: &pipeline.RunCursor{At: base.Add(3 * tick), RunID: runs[3].ID}},
		{Pipeline: pA, Cursor: &pipeline.RunCursor{At: base.Add(3 * tick), RunID: runs[2].ID}},
		{Since: base, Cursor: &pipeline.RunCursor{At: base.Add(100 * tick), RunID: "zz"}},
		{Since: base, Cursor: &pipeline.RunCursor{At: base.Add(-tick), RunID: "a"}, OldestFirst: true},
	} {
		checkList(t, l, runs, f)
	}
	for _, limit := range []int{1, 2, 5} {
		for _, oldest := range []bool{true, false} {
			checkPaged(t, l, runs, pipeline.RunFilter{Since: base, OldestFirst: oldest, Limit: limit})
			checkPaged(t, l, runs, pipeline.RunFilter{Pipeline: pA, OldestFirst: oldest, Limit: limit})
			checkPaged(t, l, runs, pipeline.RunFilter{Since: base, Status: pipeline.RunPending, OldestFirst: oldest, Limit: limit})
		}
	}
}

// testNotifyPending checks the listing of runs whose final notification is
// owed: by finish time (not creation time), following UpdateRun as runs end,
// are notified and end anew.
func (s suite) testNotifyPending(t *testing.T) {
	ctx, l := t.Context(), s.newLedger(t)
	base := farFuture(t)
	p := uniqueName(t)
	// Runs created long before base (so a creation-time window would miss
	// them), finishing in base's region in another order than created.
	var runs []pipeline.Run
	finish := []int{4, 1, 7, 1, 0, 9}
	for i := range finish {
		r := newRun(p, fmt.Sprintf("k%02d", i), at(time.Duration(i)*time.Second))
		stored := mustCreate(ctx, t, l, r, newSteps(r.ID, "a"))
		r.Version = stored.Version
		runs = append(runs, r)
	}
	end := func(i int, status pipeline.RunStatus, n pipeline.NotifyState, off int) {
		t.Helper()
		r := runs[i]
		r.Status, r.Notify = status, n
		r.FinishedAt = base.Add(time.Duration(off) * tick)
		r.UpdatedAt = r.FinishedAt
		runs[i] = mustUpdateRun(ctx, t, l, r)
	}
	for i, off := range finish {
		status := pipeline.RunSucceeded
		if i%2 == 1 {
			status = pipeline.RunFailed
		}
		if i == 5 {
			end(i, status, pipeline.NotifyDone, off) // notified: not owed
			continue
		}
		end(i, status, pipeline.NotifyPending, off)
	}
	filters := []pipeline.RunFilter{
		{NotifyPending: true, Since: base},
		{NotifyPending: true, Since: base, OldestFirst: true},
		{NotifyPending: true, Since: base.Add(tick), Before: base.Add(7 * tick)},
		{NotifyPending: true, Since: base, Limit: 2},
	}
	check := func(what string) {
		t.Helper()
		for _, f := range filters {
			checkList(t, l, runs, f)
		}
		for _, oldest := range []bool{true, false} {
			checkPaged(t, l, runs, pipeline.RunFilter{NotifyPending: true, Since: base, OldestFirst: oldest, Limit: 2})
		}
		if t.Failed() {
			t.Fatalf("after %s", what)
		}
	}
	check("the runs ended")
	if got := len(expected(runs, filters[0])); got != 5 {
		t.Fatalf("fixture: %d runs owed, want 5", got)
	}

	// Notified: it leaves the listing.
	runs[0].Notify = pipeline.NotifyDone
	runs[0] = mustUpdateRun(ctx, t, l, runs[0])
	check("a notification was recorded")

	// Re-opened (still owed from its last end) and ended anew later: it
	// moves to its new finish time.
	runs[1].Status = pipeline.RunRunning
	runs[1] = mustUpdateRun(ctx, t, l, runs[1])
	check("a run was re-opened")
	end(1, pipeline.RunSucceeded, pipeline.NotifyPending, 20)
	check("a run ended anew")

	// A notified run ends anew with its notification owed again.
	end(5, pipeline.RunFailed, pipeline.NotifyPending, 2)
	check("a notified run ended anew")

	// NotifyPending with a pipeline or status is refused.
	for _, f := range []pipeline.RunFilter{{NotifyPending: true, Pipeline: p}, {NotifyPending: true, Status: pipeline.RunFailed}} {
		if _, err := l.ListRuns(ctx, f); !errors.Is(err, pipeline.ErrInvalid) {
			t.Errorf("ListRuns(%+v): err %v, want ErrInvalid", f, err)
		}
	}
}
