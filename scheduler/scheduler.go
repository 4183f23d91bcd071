// Package scheduler is the local stand-in for Cloud Scheduler: it fires each
// pipeline's cron schedule in the pipeline's time zone and calls the service's
// start route exactly as Cloud Scheduler would, with the scheduled time.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Fire is called for each scheduled tick with the scheduled time.
type Fire func(ctx context.Context, def *pipeline.Definition, scheduled time.Time) error

// Local fires the schedules of a catalog's pipelines.
type Local struct {
	Catalog *pipeline.Catalog
	Fire    Fire
	Logger  *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Retries is how many times a failed Fire is retried, with backoff, before
	// the tick is given up (Cloud Scheduler's retry_count; default 3).
	Retries int
	// Paused, when set, makes the cron skip a paused pipeline's fire times.
	Paused Paused
}

// Run blocks until ctx is done, firing every scheduled pipeline on time.
func (l *Local) Run(ctx context.Context) error {
	if l.Now == nil {
		l.Now = time.Now
	}
	if l.Logger == nil {
		l.Logger = slog.Default()
	}
	if l.Retries == 0 {
		l.Retries = 3
	}
	var wg sync.WaitGroup
	for _, def := range l.Catalog.All() {
		if def.Schedule == "" {
			continue
		}
		sched, err := pipeline.ParseSchedule(def.Schedule)
		if err != nil {
			return fmt.Errorf("scheduler: %s: %w", def.Name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.loop(ctx, def, sched)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func (l *Local) loop(ctx context.Context, def *pipeline.Definition, sched cron.Schedule) {
	next := pipeline.NextFire(sched, def.Location, l.Now())
	l.Logger.Info("local scheduler armed", "pipeline", def.Name, "schedule", def.Schedule, "time_zone", def.TimeZone, "next", next.Format(time.RFC3339))
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		l.fire(ctx, def, next)
		next = pipeline.NextFire(sched, def.Location, next)
	}
}

func (l *Local) fire(ctx context.Context, def *pipeline.Definition, scheduled time.Time) {
	if l.skipped(ctx, def, scheduled) {
		return
	}
	backoff := time.Second
	for attempt := 0; ; attempt++ {
		err := l.Fire(ctx, def, scheduled)
		if err == nil {
			return
		}
		if attempt >= l.Retries || ctx.Err() != nil {
			l.Logger.Error("scheduled start failed; giving up on this tick", "pipeline", def.Name, "scheduled", scheduled.Format(time.RFC3339), "error", err.Error())
			return
		}
		l.Logger.Warn("scheduled start failed; retrying", "pipeline", def.Name, "error", err.Error(), "in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}
