package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pipelinehq/pipeline/doctor"
)

// schedulesCmd prints each scheduled pipeline's Cloud Scheduler job settings,
// for the deploy script: the schedule and time zone come from the pipeline
// files only.
type schedulesCmd struct {
	State bool `name:"state" help:"Instead, read the ledger (local store, PIPELINE_BACKEND=gcp or --url) and print each scheduled pipeline's next fire time, pause, and how its latest date went (missed, started late, late)."`
	opsTarget
}

func (s *schedulesCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	if s.State {
		return s.state(ctx, cfg, env)
	}
	catalog, err := loadCatalog(cfg)
	if err != nil {
		var problems []string
		collect(err, &problems)
		for _, p := range problems {
			fmt.Fprintf(env.stderr, "  - %s\n", p)
		}
		return exitCode{code: 1, msg: fmt.Sprintf("schedules: %d problem(s) in the pipeline files", len(problems))}
	}
	list := doctor.Schedules(catalog.All())
	if s.JSON {
		if list == nil {
			list = []doctor.Schedule{}
		}
		if err := json.NewEncoder(env.stdout).Encode(list); err != nil {
			return fmt.Errorf("schedules: write: %w", err)
		}
		return nil
	}
	// TSV, no header: pipeline, schedule, time zone, attempt deadline.
	for _, j := range list {
		fmt.Fprintf(env.stdout, "%s\t%s\t%s\t%ds\n", j.Pipeline, j.Schedule, j.TimeZone, j.AttemptDeadlineSeconds)
	}
	return nil
}
