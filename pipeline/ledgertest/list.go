package ledgertest

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// matches is the reference semantics of a RunFilter, Limit and Cursor aside.
func matches(r pipeline.Run, f pipeline.RunFilter) bool {
	at := f.OrderTime(r)
	return (f.Pipeline == "" || r.Pipeline == f.Pipeline) &&
		(f.Status == "" || r.Status == f.Status) &&
		(!f.NotifyPending || r.Notify == pipeline.NotifyPending) &&
		(f.Since.IsZero() || !at.Before(f.Since)) &&
		(f.Before.IsZero() || at.Before(f.Before))
}

// order compares runs in f's listing order: by time, then run ID, newest
// first unless OldestFirst.
func order(f pipeline.RunFilter) func(a, b pipeline.Run) int {
	return func(a, b pipeline.Run) int {
		c := cmp.Or(f.OrderTime(a).Compare(f.OrderTime(b)), cmp.Compare(a.ID, b.ID))
		if f.OldestFirst {
			return c
		}
		return -c
	}
}

// expected is what ListRuns(f) must return out of runs: the matching ones
// past the cursor, in f's order, at most Limit (0 means 100).
func expected(runs []pipeline.Run, f pipeline.RunFilter) []pipeline.Run {
	var want []pipeline.Run
	for _, r := range runs {
		if matches(r, f) {
			want = append(want, r)
		}
	}
	less := order(f)
	slices.SortFunc(want, less)
	if f.Cursor != nil {
		mark := pipeline.Run{ID: f.Cursor.RunID, CreatedAt: f.Cursor.At, FinishedAt: f.Cursor.At}
		want = slices.DeleteFunc(want, func(r pipeline.Run) bool { return less(r, mark) <= 0 })
	}
	limit := cmp.Or(f.Limit, 100)
	if len(want) > limit {
		want = want[:limit]
	}
	return want
}

func checkList(t *testing.T, l pipeline.Ledger, runs []pipeline.Run, f pipeline.RunFilter) {
	t.Helper()
	got, err := l.ListRuns(t.Context(), f)
	if err != nil {
		t.Fatalf("ListRuns(%+v): %v", f, err)
	}
	want := expected(runs, f)
	if g, w := runIDsOf(got), runIDsOf(want); !slices.Equal(g, w) {
		t.Errorf("ListRuns(%+v):\n got %v\nwant %v", f, g, w)
		return
	}
	for i := range want {
		checkRun(t, fmt.Sprintf("ListRuns(%+v)", f), got[i], want[i])
		if len(got[i].Steps) != 0 {
			t.Errorf("ListRuns(%+v): run %s has %d steps, want none", f, got[i].ID, len(got[i].Steps))
		}
	}
}

// tick separates creation times in ListRuns tests: whole microseconds (the
// precision of Firestore), within the region farFuture hands out.
const tick = 10 * time.Microsecond

func (s suite) testListRuns(t *testing.T) {
	t.Run("filters and order", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		base := farFuture(t)
		pA, pB := uniqueName(t), uniqueName(t)
		statusA := []pipeline.RunStatus{pipeline.RunPending, pipeline.RunRunning, pipeline.RunSucceeded, pipeline.RunRunning, pipeline.RunFailed}
		var runs []pipeline.Run
		for i, st := range statusA {
			r := newRun(pA, fmt.Sprintf("2300-01-%02d", i+1), base.Add(time.Duration(i)*tick))
			r.Status = st
			runs = append(runs, r)
		}
		for i, off := range []time.Duration{tick / 2, 2*tick + tick/2} {
			r := newRun(pB, fmt.Sprintf("2300-02-%02d", i+1), base.Add(off))
			r.Status = pipeline.RunRunning
			runs = append(runs, r)
		}
		// Created out of time order, so an index by insertion order is caught.
		for _, i := range []int{3, 0, 6, 4, 1, 5, 2} {
			v := mustCreate(ctx, t, l, runs[i], newSteps(runs[i].ID, "a", "b"))
			runs[i].Version = v.Version
		}

		for _, f := range []pipeline.RunFilter{
			{Pipeline: pA},
			{Pipeline: pB},
			{Pipeline: pA, Status: pipeline.RunRunning},
			{Pipeline: pA, Since: base.Add(2 * tick)}, // inclusive boundary
			{Pipeline: pA, Limit: 2},
			{Pipeline: pA, Status: pipeline.RunRunning, Since: base.Add(2 * tick)},
			{Pipeline: pB, Status: pipeline.RunFailed},
			{Since: base},
			{Since: base, Status: pipeline.RunRunning},
			{Since: base.Add(tick), Limit: 3},
			{Since: base.Add(tick + time.Microsecond)},
			{Pipeline: pA, Before: base.Add(2 * tick)}, // exclusive boundary
			{Since: base, Before: base.Add(3 * tick), Limit: 2},
			{Pipeline: pB, Status: pipeline.RunFailed, Before: base.Add(3 * tick)},
		} {
			checkList(t, l, runs, f)
		}

		// The status filter follows UpdateRun.
		runs[0].Status = pipeline.RunSucceeded
		runs[0] = mustUpdateRun(ctx, t, l, runs[0])
		checkList(t, l, runs, pipeline.RunFilter{Pipeline: pA, Status: pipeline.RunSucceeded})
		checkList(t, l, runs, pipeline.RunFilter{Since: base, Status: pipeline.RunPending})
	})

	t.Run("Limit 0 means 100", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		base := farFuture(t)
		p := uniqueName(t)
		runs := make([]pipeline.Run, 101)
		for i := range runs {
			runs[i] = newRun(p, fmt.Sprintf("k%03d", i), base.Add(time.Duration(i)*time.Microsecond))
		}
		// A few writers in parallel, to be quick against emulators.
		const workers = 8
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(runs); i += workers {
					if _, _, err := l.CreateRun(ctx, runs[i], newSteps(runs[i].ID, "only")); err != nil {
						errs[w] = err
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("CreateRun: %v", err)
			}
		}
		checkList(t, l, runs, pipeline.RunFilter{Pipeline: p})
		checkList(t, l, runs, pipeline.RunFilter{Since: base})
		checkList(t, l, runs, pipeline.RunFilter{Pipeline: p, Limit: 101})
		checkList(t, l, runs, pipeline.RunFilter{Pipeline: p, Limit: 7})
	})
}
