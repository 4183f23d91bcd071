// Package notify holds the notifiers that tell people about runs: the log
// notifier (the default) here, Discord in its own subpackage. Notifiers receive
// pipeline.Events after the orchestrator has committed them.
package notify

import (
	"context"
	"log/slog"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Log writes every event as a structured log line.
type Log struct {
	Logger *slog.Logger
}

var _ pipeline.Notifier = (*Log)(nil)

// Notify logs e. It never fails.
func (l *Log) Notify(ctx context.Context, e pipeline.Event) error {
	attrs := []any{"event", string(e.Kind), "run", e.Run.ID, "pipeline", e.Run.Pipeline}
	level := slog.LevelInfo
	if a := e.Schedule; a != nil {
		attrs = append(attrs, "date", a.Date, "expected", a.Expected, "late_s", int64(a.Late.Seconds()))
		if a.Step != "" {
			attrs = append(attrs, "step", a.Step, "step_status", string(a.StepStatus), "step_since_s", int64(a.StepSince.Seconds()))
		}
	} else if e.Step != nil {
		attrs = append(attrs, "step", e.Step.Step, "status", string(e.Step.Status),
			"attempt", e.Step.Attempts, "max_attempts", e.Step.MaxAttempts)
		if e.Step.Error != "" {
			attrs = append(attrs, "error", e.Step.Error)
		}
		if d := e.Step.Duration(); d > 0 && e.Step.Status != pipeline.StepRunning {
			attrs = append(attrs, "duration_ms", d.Milliseconds())
		}
	} else {
		attrs = append(attrs, "status", string(e.Run.Status))
		if e.Run.Error != "" {
			attrs = append(attrs, "error", e.Run.Error)
		}
	}
	switch e.Kind {
	case pipeline.EventStepRetrying, pipeline.EventStartMissed, pipeline.EventRunLate:
		level = slog.LevelWarn
	case pipeline.EventStepFailed, pipeline.EventRunFailed:
		level = slog.LevelError
	}
	l.Logger.Log(ctx, level, "notification: "+string(e.Kind), attrs...)
	return nil
}

// Func adapts a function to pipeline.Notifier.
type Func func(ctx context.Context, e pipeline.Event) error

// Notify calls f.
func (f Func) Notify(ctx context.Context, e pipeline.Event) error { return f(ctx, e) }
