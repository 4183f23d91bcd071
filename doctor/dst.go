package doctor

import (
	"fmt"
	"strings"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/scheduler"
)

// DSTGaps warns about a schedule with a tick at a wall time that a
// daylight-saving change skips in the coming year (Europe/Paris `30 2 * * *`
// on 2026-03-29). The local cron fires such a tick at the end of the gap, on
// the same date; Cloud Scheduler documents only that jobs in a time zone with
// daylight saving may "run or not run unexpectedly", so the GCP run of that
// date is not guaranteed.
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
			ticks, err := scheduler.GapTicks(d.Schedule, d.Location, from, from.AddDate(1, 0, 0))
			if err != nil || len(ticks) == 0 {
				continue
			}
			var days []string
			for _, t := range ticks {
				days = append(days, t.In(d.Location).Format(time.DateOnly))
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
