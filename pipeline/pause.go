package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Fields of a pause Mark.
const (
	pausePaused    = "paused" // "true" or "false"
	pauseBy        = "by"
	pauseReason    = "reason"
	pauseAt        = "at"
	pauseResumedBy = "resumed_by"
	pauseResumedAt = "resumed_at"
)

// JobControl pauses and resumes the Scheduler job that starts a pipeline (on
// GCP, its Cloud Scheduler job). Both are idempotent.
type JobControl interface {
	PauseJob(ctx context.Context, pipeline string) error
	ResumeJob(ctx context.Context, pipeline string) error
}

// maxPauseReason bounds the reason of a pause.
const maxPauseReason = 500

// PauseState is whether a pipeline is paused, by whom and why, as recorded in
// the ledger. A pipeline never paused has the zero state.
type PauseState struct {
	Pipeline  string    `json:"pipeline"`
	Paused    bool      `json:"paused"`
	By        string    `json:"by,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at,omitzero"`
	ResumedBy string    `json:"resumed_by,omitempty"`
	ResumedAt time.Time `json:"resumed_at,omitzero"`
}

func pauseFromMark(m Mark) PauseState {
	at, _ := time.Parse(time.RFC3339Nano, m.Fields[pauseAt])
	resumed, _ := time.Parse(time.RFC3339Nano, m.Fields[pauseResumedAt])
	return PauseState{
		Pipeline: m.Pipeline, Paused: m.Fields[pausePaused] == "true",
		By: m.Fields[pauseBy], Reason: m.Fields[pauseReason], At: at,
		ResumedBy: m.Fields[pauseResumedBy], ResumedAt: resumed,
	}
}

// PauseState reads whether the pipeline is paused.
func (o *Orchestrator) PauseState(ctx context.Context, pipeline string) (PauseState, error) {
	def, err := o.pipelineFor(pipeline)
	if err != nil {
		return PauseState{}, err
	}
	m, err := o.ledger.GetMark(ctx, MarkID(MarkPause, def.Name, ""))
	if errors.Is(err, ErrNotFound) {
		return PauseState{Pipeline: def.Name}, nil
	}
	if err != nil {
		return PauseState{}, fmt.Errorf("pause state of %s: %w", def.Name, err)
	}
	return pauseFromMark(m), nil
}

// PauseRequest asks to pause or resume a pipeline.
type PauseRequest struct {
	Pipeline string `json:"pipeline"`
	Reason   string `json:"reason,omitempty"`
	// By is who asks (the caller's identity); set by the caller, not the body.
	By string `json:"-"`
}

// Pause records that the pipeline is paused, by whom and why: the scheduler's
// starts are skipped and no missed-start alert fires until Unpause. Pausing a
// paused pipeline changes nothing and reports the existing pause.
func (o *Orchestrator) Pause(ctx context.Context, req PauseRequest) (PauseState, error) {
	req.Reason = strings.TrimSpace(req.Reason)
	if len(req.Reason) > maxPauseReason {
		return PauseState{}, fmt.Errorf("%w: reason is %d bytes, at most %d", ErrInvalid, len(req.Reason), maxPauseReason)
	}
	st, err := o.setPause(ctx, req, true)
	if err != nil {
		return st, err
	}
	return st, o.controlJob(ctx, st, true)
}

// Unpause records that the pipeline runs on its schedule again. Unpausing a
// pipeline that is not paused changes nothing.
func (o *Orchestrator) Unpause(ctx context.Context, req PauseRequest) (PauseState, error) {
	st, err := o.setPause(ctx, req, false)
	if err != nil {
		return st, err
	}
	return st, o.controlJob(ctx, st, false)
}

// controlJob pauses or resumes the pipeline's Scheduler job after the ledger
// recorded the pause (the ledger decides: a start the job still sends is
// skipped). Repeating the command repeats the call, so a failure is healed by
// running it again.
func (o *Orchestrator) controlJob(ctx context.Context, st PauseState, pause bool) error {
	if o.jobs == nil || o.catalog.Get(st.Pipeline).Schedule == "" {
		return nil
	}
	call, verb := o.jobs.ResumeJob, "resuming"
	if pause {
		call, verb = o.jobs.PauseJob, "pausing"
	}
	if err := call(ctx, st.Pipeline); err != nil {
		return fmt.Errorf("%s is recorded as paused=%v in the ledger (scheduled starts follow it), but %s its Cloud Scheduler job failed: %w; run the command again", st.Pipeline, st.Paused, verb, err)
	}
	return nil
}

func (o *Orchestrator) setPause(ctx context.Context, req PauseRequest, paused bool) (PauseState, error) {
	def, err := o.pipelineFor(req.Pipeline)
	if err != nil {
		return PauseState{}, err
	}
	by := req.By
	if by == "" {
		by = "unknown"
	}
	now := o.now().UTC()
	m, _, err := o.ledger.CreateMark(ctx, NewMark(MarkPause, def.Name, "", now))
	if err != nil {
		return PauseState{}, fmt.Errorf("pause %s: %w", def.Name, err)
	}
	for range 5 {
		if (m.Fields[pausePaused] == "true") == paused {
			return pauseFromMark(m), nil // already so
		}
		w := m
		w.Fields = map[string]string{}
		for k, v := range m.Fields {
			w.Fields[k] = v
		}
		w.UpdatedAt = now
		if paused {
			w.Fields[pausePaused], w.Fields[pauseBy], w.Fields[pauseReason], w.Fields[pauseAt] = "true", by, req.Reason, now.Format(time.RFC3339Nano)
			delete(w.Fields, pauseResumedBy)
			delete(w.Fields, pauseResumedAt)
		} else {
			w.Fields[pausePaused], w.Fields[pauseResumedBy], w.Fields[pauseResumedAt] = "false", by, now.Format(time.RFC3339Nano)
		}
		stored, err := o.ledger.UpdateMark(ctx, w)
		if err == nil {
			verb := "paused"
			if !paused {
				verb = "unpaused"
			}
			o.log.InfoContext(ctx, "pipeline "+verb, "pipeline", def.Name, "by", by, "reason", req.Reason)
			return pauseFromMark(stored), nil
		}
		if !errors.Is(err, ErrConflict) {
			return PauseState{}, fmt.Errorf("pause %s: %w", def.Name, err)
		}
		if m, err = o.ledger.GetMark(ctx, m.ID); err != nil {
			return PauseState{}, fmt.Errorf("pause %s: %w", def.Name, err)
		}
	}
	return PauseState{}, fmt.Errorf("%w: pause record of %s keeps changing", ErrConflict, def.Name)
}

// pausedAt says whether the pipeline was paused at t (or is paused now).
func (p PauseState) pausedAt(t time.Time) bool {
	if p.Paused {
		return true
	}
	return !p.ResumedAt.IsZero() && p.ResumedAt.After(t) && !p.At.After(t)
}
