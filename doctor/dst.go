package doctor

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/pipelinehq/pipeline/pipeline"
)

// DSTGaps warns about a schedule with a tick at a wall time that a
// daylight-saving change skips in the coming year (Europe/Paris `30 2 * * *`
// on 2026-03-29). The local cron fires such a tick at the end of the gap, on
// the same date (pipeline.NextFire); Cloud Scheduler documents only that jobs
// in a time zone with daylight saving may "run or not run unexpectedly", so
// the GCP run of that date is not guaranteed.
func DSTGaps(cfg Config, defs []*pipeline.Definition) []Finding {
	return DSTGapsFrom(time.Now())(cfg, defs)
}

// DSTGapsFrom is DSTGaps over the year after from.
func DSTGapsFrom(from time.Time) Check {
	return func(cfg Config, defs []*pipeline.Definition) []Finding {
		var out []Finding
		for _, d := range defs {
			if d.Schedule == "" || d.Location == nil {
				continue
			}
			sched, err := pipeline.ParseSchedule(d.Schedule)
			if err != nil {
				continue // validate reports it
			}
			days := gapDays(sched, d.Location, from, from.AddDate(1, 0, 0))
			if len(days) == 0 {
				continue
			}
			out = append(out, Finding{
				Severity: SeverityWarning, Check: "dst-gap", Subject: "pipeline " + d.Name,
				Problem: fmt.Sprintf("schedule %q in %s has a tick at a wall time that does not exist on %s (clocks spring forward)", d.Schedule, d.TimeZone, strings.Join(days, ", ")),
				Why:     "the local cron fires it when the gap ends (same date), but Cloud Scheduler does not document a run for a time that does not exist: that day's run may be missing on GCP",
				Fix:     "schedule outside the change hour (e.g. 0 4 * * *) or use time_zone UTC, then redeploy the Scheduler job: gcloud scheduler jobs update http " + cfg.jobName(d.Name) + " --project " + cfg.project() + " --location " + cfg.region() + " --schedule='0 4 * * *'",
			})
		}
		return out
	}
}

// gapDays lists the dates (in loc) between from and to on which sched has a
// tick at a wall time skipped by a daylight-saving change.
func gapDays(sched cron.Schedule, loc *time.Location, from, to time.Time) []string {
	var days []string
	at := from.In(loc)
	for {
		_, end := at.ZoneBounds()
		if end.IsZero() || end.After(to) {
			return days
		}
		// The wall clock jumps from before to after: a tick at a wall
		// time in between does not exist.
		before, after := wall(end.Add(-time.Nanosecond).In(loc)), wall(end.In(loc))
		if w := sched.Next(before); !w.IsZero() && w.Before(after) {
			days = append(days, end.In(loc).Format(time.DateOnly))
		}
		at = end
	}
}

// wall is t's wall clock read as a UTC time.
func wall(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}
