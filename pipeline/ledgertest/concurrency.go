package ledgertest

import (
	"errors"
	"sync"
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

func (s suite) testConcurrency(t *testing.T) {
	t.Run("50 writers from one version: exactly one wins", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		mustCreate(ctx, t, l, r, newSteps(r.ID, stepNames...))
		base := mustGetStep(ctx, t, l, r.ID, "extract")

		const n = 50
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				claim := base
				claim.Status = pipeline.StepRunning
				claim.Attempts = i + 1 // tells the winner apart
				<-start
				_, errs[i] = l.UpdateStep(ctx, claim)
			})
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Errorf("writers %d and %d both won", winner, i)
				}
				winner = i
			case !errors.Is(err, pipeline.ErrConflict):
				t.Errorf("writer %d: %v, want ErrConflict", i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("no writer won")
		}
		got := mustGetStep(ctx, t, l, r.ID, "extract")
		if got.Attempts != winner+1 || got.Status != pipeline.StepRunning {
			t.Errorf("stored Attempts=%d Status=%q, want the winner's %d %q", got.Attempts, got.Status, winner+1, pipeline.StepRunning)
		}
	})

	t.Run("writes to 20 steps of one run do not conflict", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		names := manySteps(20)
		mustCreate(ctx, t, l, r, newSteps(r.ID, names...))
		before := mustGetRun(ctx, t, l, r.ID)

		const writes = 3 // claim, record, finish: each from the last version
		errs := make([]error, len(before.Steps))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, st := range before.Steps {
			wg.Go(func() {
				<-start
				for w := range writes {
					st.Attempts = w + 1
					st.Status = pipeline.StepRunning
					if w == writes-1 {
						st.Status = pipeline.StepSucceeded
						st.Output = output(st.Step)
					}
					next, err := l.UpdateStep(ctx, st)
					if err != nil {
						errs[i] = err
						return
					}
					st = next
				}
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("step %s: %v", before.Steps[i].Step, err)
			}
		}

		after := mustGetRun(ctx, t, l, r.ID)
		if after.Version != before.Version {
			t.Errorf("run Version changed from %d to %d by step writes", before.Version, after.Version)
		}
		if len(after.Steps) != len(names) {
			t.Fatalf("run has %d steps, want %d", len(after.Steps), len(names))
		}
		for i, st := range after.Steps {
			if st.Step != names[i] {
				t.Errorf("step %d is %s, want %s", i, st.Step, names[i])
			}
			if st.Status != pipeline.StepSucceeded || st.Attempts != writes {
				t.Errorf("step %s: Status=%q Attempts=%d, want %q %d", st.Step, st.Status, st.Attempts, pipeline.StepSucceeded, writes)
			}
		}
	})
}
