package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// logLine logs e through a Log notifier writing JSON at level and returns
// the line decoded (nil when nothing was written).
func logLine(t *testing.T, level slog.Level, e pipeline.Event) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	l := &Log{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))}
	if err := l.Notify(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if buf.Len() == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	delete(m, "time")
	return m
}

func TestLogNotifierLines(t *testing.T) {
	start := time.Date(2026, 3, 14, 6, 0, 0, 0, time.UTC)
	run := pipeline.Run{ID: "daily@2026-03-14", Pipeline: "daily", Status: pipeline.RunRunning}
	for _, tc := range []struct {
		name string
		e    pipeline.Event
		want map[string]any
	}{{
		name: "step succeeded",
		e: pipeline.Event{Kind: pipeline.EventStepSucceeded, Run: run, Step: &pipeline.StepRun{Step: "extract", Status: pipeline.StepSucceeded,
			Attempts: 2, MaxAttempts: 3, StartedAt: start, FinishedAt: start.Add(1500 * time.Millisecond)}},
		want: map[string]any{"level": "INFO", "msg": "notification: step_succeeded", "event": "step_succeeded", "run": "daily@2026-03-14", "pipeline": "daily",
			"step": "extract", "status": "succeeded", "attempt": 2.0, "max_attempts": 3.0, "duration_ms": 1500.0},
	}, {
		name: "step failed",
		e: pipeline.Event{Kind: pipeline.EventStepFailed, Run: run, Step: &pipeline.StepRun{Step: "load", Status: pipeline.StepFailed,
			Attempts: 3, MaxAttempts: 3, Error: "boom"}},
		want: map[string]any{"level": "ERROR", "msg": "notification: step_failed", "event": "step_failed", "run": "daily@2026-03-14", "pipeline": "daily",
			"step": "load", "status": "failed", "attempt": 3.0, "max_attempts": 3.0, "error": "boom"},
	}, {
		name: "run failed",
		e:    pipeline.Event{Kind: pipeline.EventRunFailed, Run: pipeline.Run{ID: run.ID, Pipeline: "daily", Status: pipeline.RunFailed, Error: "step load failed"}},
		want: map[string]any{"level": "ERROR", "msg": "notification: run_failed", "event": "run_failed", "run": "daily@2026-03-14", "pipeline": "daily",
			"status": "failed", "error": "step load failed"},
	}, {
		name: "run late",
		e: pipeline.Event{Kind: pipeline.EventRunLate, Run: run, Schedule: &pipeline.ScheduleAlert{Date: "2026-03-14", Expected: start,
			Late: 90 * time.Second, Step: "load", StepStatus: pipeline.StepRunning, StepSince: 30 * time.Second}},
		want: map[string]any{"level": "WARN", "msg": "notification: run_late", "event": "run_late", "run": "daily@2026-03-14", "pipeline": "daily",
			"date": "2026-03-14", "expected": "2026-03-14T06:00:00Z", "late_s": 90.0, "step": "load", "step_status": "running", "step_since_s": 30.0},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := logLine(t, slog.LevelInfo, tc.e)
			if len(got) != len(tc.want) {
				t.Errorf("line has %d fields, want %d:\n got %v\nwant %v", len(got), len(tc.want), got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
		})
	}
	if got := logLine(t, slog.LevelWarn, pipeline.Event{Kind: pipeline.EventStepStarted, Run: run, Step: &pipeline.StepRun{Step: "a", Status: pipeline.StepRunning}}); got != nil {
		t.Errorf("an info event logged at level warn: %v", got)
	}
}

// The log notifier leaves a step's start and success to the orchestrator's
// own lines and takes every other kind.
func TestLogNotifierWants(t *testing.T) {
	l := &Log{}
	for _, k := range []pipeline.EventKind{pipeline.EventRunStarted, pipeline.EventStepRetrying, pipeline.EventStepFailed,
		pipeline.EventStepWaiting, pipeline.EventRunSucceeded, pipeline.EventRunFailed, pipeline.EventRunCancelled,
		pipeline.EventStartMissed, pipeline.EventStartedLate, pipeline.EventRunLate} {
		if !l.Wants(k) {
			t.Errorf("Wants(%s) = false", k)
		}
	}
	for _, k := range []pipeline.EventKind{pipeline.EventStepStarted, pipeline.EventStepSucceeded} {
		if l.Wants(k) {
			t.Errorf("Wants(%s) = true: the orchestrator logs it itself", k)
		}
	}
}
