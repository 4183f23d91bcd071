package ledgertest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

func (s suite) testCreateRun(t *testing.T) {
	t.Run("writes the run and all its steps", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		steps := newSteps(r.ID, stepNames...)
		stored, created, err := l.CreateRun(ctx, r, steps)
		if err != nil {
			t.Fatalf("CreateRun: %v", err)
		}
		if !created {
			t.Fatalf("CreateRun of a new run: created=false")
		}
		checkRun(t, "CreateRun result", stored, r)

		got := mustGetRun(ctx, t, l, r.ID)
		checkRun(t, "GetRun", got, r)
		if got.Version != stored.Version {
			t.Errorf("GetRun Version = %d, CreateRun returned %d", got.Version, stored.Version)
		}
		checkSteps(t, "GetRun steps (creation order)", got.Steps, steps, false)

		byName, err := l.GetSteps(ctx, r.ID, stepNames...)
		if err != nil {
			t.Fatalf("GetSteps: %v", err)
		}
		checkSteps(t, "GetSteps", byName, got.Steps, true)
	})

	t.Run("an existing run is returned and left alone", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		steps := newSteps(r.ID, stepNames...)
		first := mustCreate(ctx, t, l, r, steps)
		before := mustGetRun(ctx, t, l, r.ID)

		// Same ID, every other field and the step set different.
		other := r
		other.Status = pipeline.RunRunning
		other.Error = "should not be written"
		other.Trigger = "scheduler"
		other.Params = map[string]string{"intruder": "yes"}
		other.CreatedAt = at(time.Hour)
		other.UpdatedAt = at(time.Hour)
		other.Notify = pipeline.NotifyPending
		otherSteps := newSteps(r.ID, "intruder", stepNames[0])
		otherSteps[1].Status = pipeline.StepSucceeded
		otherSteps[1].Attempts = 2

		stored, created, err := l.CreateRun(ctx, other, otherSteps)
		if err != nil {
			t.Fatalf("second CreateRun: %v", err)
		}
		if created {
			t.Fatalf("second CreateRun: created=true, want false")
		}
		checkRun(t, "second CreateRun result", stored, r)
		if stored.Version != first.Version {
			t.Errorf("second CreateRun Version = %d, want the stored %d", stored.Version, first.Version)
		}
		if len(stored.Steps) != 0 {
			t.Errorf("second CreateRun returned %d steps, want the run without steps", len(stored.Steps))
		}

		after := mustGetRun(ctx, t, l, r.ID)
		checkRun(t, "GetRun after second CreateRun", after, r)
		if after.Version != before.Version {
			t.Errorf("run Version changed from %d to %d", before.Version, after.Version)
		}
		checkSteps(t, "steps after second CreateRun", after.Steps, before.Steps, true)
		if _, err := l.GetSteps(ctx, r.ID, "intruder"); !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("GetSteps(intruder) = %v, want ErrNotFound", err)
		}
	})

	t.Run("racing creates of one run: one wins, all see it", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		p := uniqueName(t)
		const n = 10
		type result struct {
			stored  pipeline.Run
			created bool
			err     error
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := newRun(p, "2026-03-14", at(time.Duration(i)*time.Second))
				r.Trigger = fmt.Sprintf("racer-%d", i)
				steps := newSteps(r.ID, stepNames...)
				for j := range steps {
					steps[j].MaxAttempts = 100 + i
				}
				<-start
				st, created, err := l.CreateRun(ctx, r, steps)
				results[i] = result{st, created, err}
			})
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, res := range results {
			if res.err != nil {
				t.Fatalf("racer %d: CreateRun: %v", i, res.err)
			}
			if res.created {
				if winner >= 0 {
					t.Fatalf("racers %d and %d both created the run", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("no racer created the run")
		}
		want := fmt.Sprintf("racer-%d", winner)
		for i, res := range results {
			if res.stored.Trigger != want {
				t.Errorf("racer %d got Trigger %q, want the winner's %q", i, res.stored.Trigger, want)
			}
		}
		got := mustGetRun(ctx, t, l, pipeline.RunID(p, "2026-03-14"))
		if got.Trigger != want {
			t.Errorf("stored Trigger %q, want %q", got.Trigger, want)
		}
		if len(got.Steps) != len(stepNames) {
			t.Fatalf("stored %d steps, want %d", len(got.Steps), len(stepNames))
		}
		for _, st := range got.Steps {
			if st.MaxAttempts != 100+winner {
				t.Errorf("step %s MaxAttempts %d: not the winner's step set (%d)", st.Step, st.MaxAttempts, 100+winner)
			}
		}
	})
}
