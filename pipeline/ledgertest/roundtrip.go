package ledgertest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// fullRun has every field set, times with nanoseconds in a non-UTC zone.
func fullRun(p string) pipeline.Run {
	r := newRun(p, "manual-1", at(0))
	r.Date = "2026-03-13"
	r.Params = map[string]string{"region": "eu", "empty": "", "unicode": "grüße ✓"}
	r.Status = pipeline.RunFailed
	r.Error = "step load: boom"
	r.Trigger = "scheduler"
	r.UpdatedAt = at(3 * time.Minute)
	r.StartedAt = at(2 * time.Minute)
	r.FinishedAt = at(4 * time.Minute)
	r.Notify = pipeline.NotifyPending
	r.Notes = map[string]string{"discord.message": "1234567890", "other": "x"}
	r.Epoch = 3
	return r
}

// fullStep has every field set, times with nanoseconds in a non-UTC zone.
func fullStep(runID, name string) pipeline.StepRun {
	return pipeline.StepRun{
		RunID:       runID,
		Step:        name,
		Status:      pipeline.StepRetrying,
		Generation:  3,
		Attempts:    2,
		MaxAttempts: 5,
		LeaseUntil:  at(10 * time.Minute),
		StartedAt:   at(time.Minute),
		FinishedAt:  at(2 * time.Minute),
		UpdatedAt:   at(2*time.Minute + time.Nanosecond),
		Error:       "transient: 503 from upstream",
		Output:      output("out-" + name),
		Forced:      true,
		Only:        true,
		Inputs:      map[string]int{"extract": 2, "forced-past": 0},
		// An asynchronous step's wait.
		AsyncState:   json.RawMessage(`{"operation":"projects/p/ops/` + name + `","polls":3}`),
		Check:        4,
		WaitingSince: at(90 * time.Second),
		NextCheckAt:  at(5*time.Minute + time.Nanosecond),
		Link:         "https://example.com/ops/" + name,
		RunInput:     "digest-of-" + runID,
	}
}

func (s suite) testRoundTrip(t *testing.T) {
	t.Run("run fields", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := fullRun(uniqueName(t))
		stored := mustCreate(ctx, t, l, r, newSteps(r.ID, "only"))
		checkRun(t, "GetRun after CreateRun", mustGetRun(ctx, t, l, r.ID), r)

		// Every field but the identity and creation changed.
		r2 := r
		r2.Version = stored.Version
		r2.Date = "2026-03-12"
		r2.Params = map[string]string{"region": "us"}
		r2.Status = pipeline.RunSucceeded
		r2.Error = "another"
		r2.Trigger = "api"
		r2.UpdatedAt = at(time.Hour)
		r2.StartedAt = at(30 * time.Minute)
		r2.FinishedAt = at(time.Hour + time.Microsecond)
		r2.Notify = pipeline.NotifyDone
		r2.Notes = map[string]string{"discord.message": "1234567890", "discord.final": "sent"}
		// The summary written at finish: listings show it without the steps.
		r2.Summary = []pipeline.StepSummary{
			{Step: "only", Status: pipeline.StepSucceeded, Attempts: 2, MaxAttempts: 3, Micros: 1234567},
			{Step: "never", Status: pipeline.StepPending, MaxAttempts: 3},
		}
		r2.Epoch = 4
		got := mustUpdateRun(ctx, t, l, r2)
		checkRun(t, "UpdateRun result", got, r2)
		checkRun(t, "GetRun after UpdateRun", mustGetRun(ctx, t, l, r.ID), r2)
		listed, err := l.ListRuns(ctx, pipeline.RunFilter{Pipeline: r.Pipeline})
		if err != nil || len(listed) != 1 {
			t.Fatalf("ListRuns: %v, %d runs", err, len(listed))
		}
		checkRun(t, "ListRuns after UpdateRun", listed[0], r2)
	})

	t.Run("run zero values stay zero and can be cleared", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		r.Params = nil
		r.Trigger = ""
		r.UpdatedAt = time.Time{}
		stored := mustCreate(ctx, t, l, r, newSteps(r.ID, "only"))
		got := mustGetRun(ctx, t, l, r.ID)
		checkRun(t, "GetRun", got, r)
		if !got.FinishedAt.IsZero() || !got.UpdatedAt.IsZero() {
			t.Errorf("zero times came back as FinishedAt=%v UpdatedAt=%v", got.FinishedAt, got.UpdatedAt)
		}

		// Fill everything, then clear it again.
		full := fullRun(r.Pipeline)
		full.ID, full.Key, full.CreatedAt = r.ID, r.Key, r.CreatedAt
		full.Version = stored.Version
		full = mustUpdateRun(ctx, t, l, full)
		r.Version = full.Version
		mustUpdateRun(ctx, t, l, r)
		checkRun(t, "GetRun after clearing", mustGetRun(ctx, t, l, r.ID), r)
	})

	t.Run("step fields", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		steps := []pipeline.StepRun{fullStep(r.ID, "first"), fullStep(r.ID, "second")}
		steps[1].Output = json.RawMessage(`[1, "two", null, {"three": 3.5}]`)
		steps[1].Forced = false
		mustCreate(ctx, t, l, r, steps)
		got := mustGetRun(ctx, t, l, r.ID)
		checkSteps(t, "GetRun after CreateRun", got.Steps, steps, false)

		s2 := steps[0]
		s2.Version = got.Steps[0].Version
		s2.Status = pipeline.StepSucceeded
		s2.Generation = 4
		s2.Attempts = 3
		s2.MaxAttempts = 6
		s2.LeaseUntil = at(20 * time.Minute)
		s2.StartedAt = at(11 * time.Minute)
		s2.FinishedAt = at(12 * time.Minute)
		s2.UpdatedAt = at(12*time.Minute + time.Microsecond)
		s2.Error = "other"
		s2.Output = json.RawMessage(`"just a string"`)
		s2.Forced = false
		s2.AsyncState = json.RawMessage(`{"operation":"other"}`)
		s2.Check = 5
		s2.WaitingSince = at(100 * time.Second)
		s2.NextCheckAt = at(7 * time.Minute)
		s2.Link = "https://example.com/other"
		ret := mustUpdateStep(ctx, t, l, s2)
		checkStep(t, "UpdateStep result", ret, s2)
		checkStep(t, "GetSteps after UpdateStep", mustGetStep(ctx, t, l, r.ID, "first"), s2)
	})

	t.Run("step zero values stay zero and can be cleared", func(t *testing.T) {
		ctx, l := t.Context(), s.newLedger(t)
		r := newRun(uniqueName(t), "2026-03-14", at(0))
		steps := newSteps(r.ID, "only")
		mustCreate(ctx, t, l, r, steps)
		got := mustGetStep(ctx, t, l, r.ID, "only")
		checkStep(t, "GetSteps", got, steps[0])
		if !got.LeaseUntil.IsZero() || !got.StartedAt.IsZero() || !got.FinishedAt.IsZero() || !got.UpdatedAt.IsZero() {
			t.Errorf("zero times came back non-zero: %+v", got)
		}
		if len(got.Output) != 0 {
			t.Errorf("absent Output came back as %q", got.Output)
		}

		full := fullStep(r.ID, "only")
		full.Version = got.Version
		full = mustUpdateStep(ctx, t, l, full)
		cleared := steps[0]
		cleared.Version = full.Version
		mustUpdateStep(ctx, t, l, cleared)
		checkStep(t, "GetSteps after clearing", mustGetStep(ctx, t, l, r.ID, "only"), cleared)
	})
}
