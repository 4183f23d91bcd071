// Package notify holds the notifiers that tell people about runs: the log
// notifier (the default) here, Discord in its own subpackage. Notifiers receive
// pipeline.Events after the orchestrator has committed them.
package notify

import (
	"context"
	"log/slog"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Log writes events as structured log lines: every kind but a step's start
// and success, which the orchestrator logs itself as it commits them ("step
// started", "step succeeded", with the run, step, attempt and duration), so
// that a step's normal course costs two lines, not four.
type Log struct {
	Logger *slog.Logger
}

var (
	_ pipeline.Notifier    = (*Log)(nil)
	_ pipeline.EventFilter = (*Log)(nil)
)

// Wants takes every kind but pipeline.EventStepStarted and
// pipeline.EventStepSucceeded.
func (l *Log) Wants(k pipeline.EventKind) bool {
	return k != pipeline.EventStepStarted && k != pipeline.EventStepSucceeded
}

// Notify logs e. It never fails.
func (l *Log) Notify(ctx context.Context, e pipeline.Event) error {
	level := slog.LevelInfo
	switch e.Kind {
	case pipeline.EventStepRetrying, pipeline.EventStartMissed, pipeline.EventRunLate:
		level = slog.LevelWarn
	case pipeline.EventStepFailed, pipeline.EventRunFailed:
		level = slog.LevelError
	}
	if !l.Logger.Enabled(ctx, level) {
		return nil
	}
	// Typed attributes, not key-value pairs: two lines per step, and each
	// pair boxed into an interface cost an allocation.
	var buf [10]slog.Attr
	attrs := append(buf[:0], slog.String("event", string(e.Kind)), slog.String("run", e.Run.ID), slog.String("pipeline", e.Run.Pipeline))
	if a := e.Schedule; a != nil {
		attrs = append(attrs, slog.String("date", a.Date), slog.Time("expected", a.Expected), slog.Int64("late_s", int64(a.Late.Seconds())))
		if a.Step != "" {
			attrs = append(attrs, slog.String("step", a.Step), slog.String("step_status", string(a.StepStatus)), slog.Int64("step_since_s", int64(a.StepSince.Seconds())))
		}
	} else if e.Step != nil {
		attrs = append(attrs, slog.String("step", e.Step.Step), slog.String("status", string(e.Step.Status)),
			slog.Int("attempt", e.Step.Attempts), slog.Int("max_attempts", e.Step.MaxAttempts))
		if e.Step.Error != "" {
			attrs = append(attrs, slog.String("error", e.Step.Error))
		}
		if d := e.Step.Duration(); d > 0 && e.Step.Status != pipeline.StepRunning {
			attrs = append(attrs, slog.Int64("duration_ms", d.Milliseconds()))
		}
	} else {
		attrs = append(attrs, slog.String("status", string(e.Run.Status)))
		if e.Run.Error != "" {
			attrs = append(attrs, slog.String("error", e.Run.Error))
		}
	}
	l.Logger.LogAttrs(ctx, level, "notification: "+string(e.Kind), attrs...)
	return nil
}

// Func adapts a function to pipeline.Notifier.
type Func func(ctx context.Context, e pipeline.Event) error

// Notify calls f.
func (f Func) Notify(ctx context.Context, e pipeline.Event) error { return f(ctx, e) }
