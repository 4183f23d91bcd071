package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pipelinehq/pipeline/doctor"
	"github.com/pipelinehq/pipeline/pipeline"
)

type validateCmd struct{}

func (v *validateCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	if err := checkPipelineFiles(cfg); err != nil {
		return err
	}
	catalog, err := loadCatalog(cfg)
	if err != nil {
		var problems []string
		collect(err, &problems)
		fmt.Fprintf(env.stderr, "%d problem(s) in %s:\n", len(problems), strings.Join(cfg.File, ", "))
		for _, p := range problems { // file:line:column first, as editors and terminals link it
			fmt.Fprintln(env.stderr, p)
		}
		return exitCode{code: 1}
	}
	for _, d := range catalog.All() {
		describe(env, d)
		for _, f := range doctor.Deadlines(doctor.Config{LeaseGrace: cfg.LeaseGrace.Duration}, []*pipeline.Definition{d}) {
			// A synchronous step longer than one Cloud Tasks delivery runs
			// locally but not on gcp; an asynchronous one waits up to 7 days.
			fmt.Fprintf(env.stdout, "  warning: %s: %s; on gcp the doctor reports it as an error (fix: %s, or use an asynchronous kind, which may wait up to %s)\n",
				f.Subject, f.Problem, strings.TrimSuffix(f.Fix, ", then redeploy"), pipeline.MaxAsyncTimeout)
		}
	}
	fmt.Fprintf(env.stdout, "ok: %d pipeline(s)\n", len(catalog.All()))
	return nil
}

// collect flattens a tree of joined errors into lines.
func collect(err error, out *[]string) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			collect(e, out)
		}
		return
	}
	*out = append(*out, err.Error())
}

func describe(env *appEnv, d *pipeline.Definition) {
	fmt.Fprintf(env.stdout, "%s  time zone %s", d.Name, d.TimeZone)
	if d.Schedule != "" {
		if s, err := pipeline.ParseSchedule(d.Schedule); err == nil {
			next := pipeline.NextFire(s, d.Location, time.Now()).In(d.Location)
			fmt.Fprintf(env.stdout, ", schedule %q (next %s)", d.Schedule, next.Format("2006-01-02 15:04 MST"))
			fmt.Fprintf(env.stdout, ", start within %s", d.StartWithin)
		}
	}
	if d.Deadline != nil {
		fmt.Fprintf(env.stdout, ", deadline %s", d.Deadline.Text)
	}
	fmt.Fprintln(env.stdout)
	for _, s := range d.Steps {
		after := "root"
		if len(s.After) > 0 {
			after = "after " + strings.Join(s.After, ", ")
		}
		fmt.Fprintf(env.stdout, "  %-20s %-18s %-24s timeout %s, %d attempt(s)\n", s.Name, s.Kind, after, s.Timeout, s.MaxAttempts)
	}
}
