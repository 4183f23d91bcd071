package app

import (
	"log/slog"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/scheduler/cloudjobs"
)

// schedulerJobs is what pauses the pipelines' Cloud Scheduler jobs on the gcp
// backend: the jobs SERVICE-PIPELINE (K_SERVICE, which Cloud Run sets) in
// CLOUD_RUN_REGION, else CLOUD_TASKS_LOCATION. Without K_SERVICE (a terminal
// without it, the emulators) it is nil: a pause is then only recorded in the
// ledger, which already makes the start route skip the scheduler's calls.
func schedulerJobs(cfg *Config, getenv func(string) string, log *slog.Logger) pipeline.JobControl {
	if cfg.Backend != "gcp" || getenv("K_SERVICE") == "" {
		return nil
	}
	region := getenv("CLOUD_RUN_REGION")
	if region == "" {
		region = cfg.TasksLocation
	}
	j, err := cloudjobs.New(cfg.Project, region, getenv("K_SERVICE"))
	if err != nil {
		log.Warn("pause will not pause the Cloud Scheduler jobs", "error", err.Error())
		return nil
	}
	return j
}
