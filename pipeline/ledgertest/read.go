package ledgertest

import (
	"errors"
	"testing"

	"github.com/pipelinehq/pipeline/pipeline"
)

func (s suite) testRead(t *testing.T) {
	t.Run("GetRun of a missing run is ErrNotFound", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		_, err := l.GetRun(ctx, pipeline.RunID(uniqueName(t), "2026-03-14"))
		if !errors.Is(err, pipeline.ErrNotFound) {
			t.Fatalf("GetRun(missing) = %v, want ErrNotFound", err)
		}
	})

	t.Run("GetSteps returns the steps in the order asked", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		mustCreate(ctx, t, l, r, newSteps(r.ID, stepNames...))
		all := mustGetRun(ctx, t, l, r.ID).Steps
		byName := map[string]pipeline.StepRun{}
		for _, st := range all {
			byName[st.Step] = st
		}
		for _, ask := range [][]string{
			{"c-report", "extract", "a-load"},
			{"notify"},
			{"a-load", "b-transform", "c-report", "extract", "notify"},
		} {
			got, err := l.GetSteps(ctx, r.ID, ask...)
			if err != nil {
				t.Fatalf("GetSteps(%v): %v", ask, err)
			}
			want := make([]pipeline.StepRun, len(ask))
			for i, n := range ask {
				want[i] = byName[n]
			}
			checkSteps(t, "GetSteps", got, want, true)
		}
	})

	t.Run("GetSteps of a missing step is ErrNotFound", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		mustCreate(ctx, t, l, r, newSteps(r.ID, stepNames...))
		for _, ask := range [][]string{{"missing"}, {"extract", "missing"}, {"missing", "extract"}} {
			if _, err := l.GetSteps(ctx, r.ID, ask...); !errors.Is(err, pipeline.ErrNotFound) {
				t.Errorf("GetSteps(%v) = %v, want ErrNotFound", ask, err)
			}
		}
	})

	t.Run("GetSteps of a missing run is ErrNotFound", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		_, err := l.GetSteps(ctx, pipeline.RunID(uniqueName(t), "2026-03-14"), "extract")
		if !errors.Is(err, pipeline.ErrNotFound) {
			t.Fatalf("GetSteps(missing run) = %v, want ErrNotFound", err)
		}
	})
}
