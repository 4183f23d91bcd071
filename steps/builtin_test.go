package steps_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/steps"
)

func TestRegistryHasBuiltins(t *testing.T) {
	reg := steps.NewRegistry()
	for _, k := range []string{"http", "noop", "sleep"} {
		if !reg.Known(k) {
			t.Errorf("kind %q not registered (have %v)", k, reg.Kinds())
		}
	}
}

func TestNoop(t *testing.T) {
	s, err := steps.NewRegistry().Build("noop", nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(context.Background(), steps.Input{})
	if out != nil || err != nil {
		t.Errorf("Run = %s, %v; want nil, nil", out, err)
	}
	if _, err := steps.NewNoop(map[string]any{"x": 1}); err == nil || !strings.Contains(err.Error(), `unknown setting "x"`) {
		t.Errorf("noop with settings: err = %v", err)
	}
}

func TestSleep(t *testing.T) {
	s, err := steps.NewSleep(map[string]any{"duration": "1ms"})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := s.Run(context.Background(), steps.Input{}); out != nil || err != nil {
		t.Errorf("Run = %s, %v; want nil, nil", out, err)
	}

	long, err := steps.NewSleep(map[string]any{"duration": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := long.Run(ctx, steps.Input{}); !errors.Is(err, context.DeadlineExceeded) || steps.IsPermanent(err) {
		t.Errorf("cancelled sleep: err = %v, want transient deadline exceeded", err)
	}

	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{nil, "duration is required"},
		{map[string]any{"duration": "soon"}, `duration "soon" is not a positive duration`},
		{map[string]any{"duration": "-1s"}, "positive"},
		{map[string]any{"duration": 5}, "must be a string"},
		{map[string]any{"duration": "1s", "jitter": "1s"}, `unknown setting "jitter"`},
	} {
		if _, err := steps.NewSleep(tc.settings); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewSleep(%v) = %v, want %q", tc.settings, err, tc.want)
		}
	}
}

func TestSettingsInt(t *testing.T) {
	s := steps.ReadSettings("k", map[string]any{"a": 3, "b": 2.5, "c": "x", "d": 500})
	if got := s.Int("a", 0, 1, 10); got != 3 {
		t.Errorf("a = %d", got)
	}
	if got := s.Int("missing", 7, 1, 10); got != 7 {
		t.Errorf("missing = %d, want default 7", got)
	}
	s.Int("b", 0, 1, 10)
	s.Int("c", 0, 1, 10)
	s.Int("d", 0, 1, 10)
	err := s.Err()
	for _, want := range []string{"k: b must be a whole number", "k: c must be a whole number", "k: d 500 must be between 1 and 10"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}
