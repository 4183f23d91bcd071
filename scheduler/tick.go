package scheduler

import (
	"context"
	"log/slog"
	"time"
)

// Tick calls Fire every Every until ctx is done: the local stand-in for the
// Scheduler job that drives POST /pipeline/reconcile.
type Tick struct {
	Every  time.Duration
	Fire   func(ctx context.Context) error
	Logger *slog.Logger
}

// Run blocks until ctx is done.
func (t *Tick) Run(ctx context.Context) error {
	if t.Logger == nil {
		t.Logger = slog.Default()
	}
	tk := time.NewTicker(t.Every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tk.C:
			if err := t.Fire(ctx); err != nil && ctx.Err() == nil {
				t.Logger.Warn("scheduled tick failed", "error", err.Error())
			}
		}
	}
}
