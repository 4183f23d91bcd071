package doctor

import (
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Cloud Scheduler attempt deadlines for HTTP targets.
const (
	// MinAttemptDeadline and MaxAttemptDeadline bound what Cloud Scheduler
	// accepts for an HTTP target.
	MinAttemptDeadline = 15 * time.Second
	MaxAttemptDeadline = 30 * time.Minute
	// attemptBase covers creating the run (one batched write) and a cold
	// start; attemptPerRoot covers one CreateTask with its bounded retries.
	attemptBase    = 30 * time.Second
	attemptPerRoot = 15 * time.Second
)

// Schedule is the Cloud Scheduler job of one pipeline, as the deploy scripts
// create it: the schedule and time zone come from the pipeline file.
type Schedule struct {
	Pipeline        string        `json:"pipeline"`
	Schedule        string        `json:"schedule"`
	TimeZone        string        `json:"time_zone"`
	AttemptDeadline time.Duration `json:"-"`
	// AttemptDeadlineSeconds is AttemptDeadline in whole seconds.
	AttemptDeadlineSeconds int `json:"attempt_deadline_seconds"`
}

// AttemptDeadline is how long Cloud Scheduler should wait for POST
// /pipeline/start of d: 30 s plus 15 s per root step (the start creates the
// run and enqueues each root), within Cloud Scheduler's [15 s, 30 min].
// deploy/terraform/scheduler.tf computes the same.
func AttemptDeadline(d *pipeline.Definition) time.Duration {
	roots := 0
	for _, s := range d.Steps {
		if len(s.After) == 0 {
			roots++
		}
	}
	return min(max(attemptBase+time.Duration(roots)*attemptPerRoot, MinAttemptDeadline), MaxAttemptDeadline)
}

// Schedules lists the Scheduler job of every scheduled pipeline, in order.
func Schedules(defs []*pipeline.Definition) []Schedule {
	var out []Schedule
	for _, d := range defs {
		if d.Schedule == "" {
			continue
		}
		ad := AttemptDeadline(d)
		out = append(out, Schedule{Pipeline: d.Name, Schedule: d.Schedule, TimeZone: d.TimeZone, AttemptDeadline: ad, AttemptDeadlineSeconds: int(ad / time.Second)})
	}
	return out
}
