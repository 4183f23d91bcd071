package scheduler

import (
	"context"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Paused reports whether a pipeline is paused (pipeline pause): the local
// cron then skips its fire times, as a paused Cloud Scheduler job does.
type Paused func(ctx context.Context, pipeline string) (bool, error)

// skipped reports whether the fire at scheduled is skipped because the
// pipeline is paused. When the pause cannot be read the fire goes ahead: the
// start route refuses a paused pipeline's scheduled start anyway.
func (l *Local) skipped(ctx context.Context, def *pipeline.Definition, scheduled time.Time) bool {
	if l.Paused == nil {
		return false
	}
	paused, err := l.Paused(ctx, def.Name)
	if err != nil {
		l.Logger.Warn("could not read whether the pipeline is paused; firing", "pipeline", def.Name, "error", err.Error())
		return false
	}
	if paused {
		l.Logger.Info("scheduled start skipped: pipeline paused", "pipeline", def.Name, "scheduled", scheduled.Format(time.RFC3339))
	}
	return paused
}
