package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// NewNoop builds a `noop` step: it returns a nil output at once. It takes no
// settings. Benchmarks and tests use it to measure the orchestrator alone.
func NewNoop(settings map[string]any) (Step, error) {
	if err := ReadSettings("noop", settings).Err(); err != nil {
		return nil, err
	}
	return StepFunc(func(context.Context, Input) (json.RawMessage, error) { return nil, nil }), nil
}

// NewSleep builds a `sleep` step: it waits for the `duration` setting (such
// as "2s") and returns a nil output, or the context's error if it ends first.
func NewSleep(settings map[string]any) (Step, error) {
	s := ReadSettings("sleep", settings)
	d := s.Duration("duration", true)
	if err := s.Err(); err != nil {
		return nil, err
	}
	return StepFunc(func(ctx context.Context, _ Input) (json.RawMessage, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("sleep %s: %w", d, context.Cause(ctx))
		}
	}), nil
}
