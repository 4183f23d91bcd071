package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pipelinehq/pipeline/doctor"
	"github.com/pipelinehq/pipeline/pipeline"
)

// doctorCmd checks the deployment's configuration for mistakes that break
// calls, runs or notifications, each with the gcloud command that fixes it.
type doctorCmd struct {
	Service          string        `name:"service" env:"K_SERVICE" help:"Cloud Run service name (K_SERVICE on Cloud Run); Scheduler jobs are SERVICE-PIPELINE."`
	Region           string        `name:"region" env:"CLOUD_RUN_REGION" help:"Cloud Run and Cloud Scheduler region; default CLOUD_TASKS_LOCATION."`
	SchedulerAccount string        `name:"scheduler-service-account" env:"SCHEDULER_SERVICE_ACCOUNT" help:"Service account whose OIDC token Cloud Scheduler attaches; must be on ALLOWED_INVOKERS."`
	CloudRunTimeout  time.Duration `name:"cloud-run-timeout" env:"CLOUD_RUN_TIMEOUT" default:"300s" help:"The Cloud Run service's request timeout (Cloud Run's default is 300s; the deploy scripts set 1800s)."`
	QueueMaxAttempts int           `name:"queue-max-attempts" env:"QUEUE_MAX_ATTEMPTS" default:"0" help:"The Cloud Tasks queue's max attempts, if known (0 unknown, -1 unlimited)."`
	SchedulerRetries int           `name:"scheduler-retries" env:"SCHEDULER_RETRIES" default:"-1" help:"The Scheduler jobs' retry count, if known (-1 unknown)."`
	DiscordURL       string        `name:"discord-url" env:"DISCORD_WEBHOOK_URL" help:"Discord webhook URL to check (DISCORD_WEBHOOK_URL)."`
	RuntimeAccount   string        `name:"runtime-service-account" env:"RUNTIME_SERVICE_ACCOUNT" help:"The service's own (runtime) service account, which asynchronous steps call out as: named in the roles they need, and checked online where possible."`
	Offline          bool          `name:"offline" help:"Skip the online checks (the live queue, Scheduler jobs and the service's IAM policy); they run when Google credentials are found."`
	OnlineTimeout    time.Duration `name:"online-timeout" default:"10s" help:"Bound on each call of the online checks (and the credentials lookup)."`
	JSON             bool          `name:"json" help:"Print the findings as JSON."`
	Strict           bool          `name:"strict" help:"Fail on warnings too."`
}

// doctorReport is the --json output.
type doctorReport struct {
	OK        bool     `json:"ok"`
	Errors    int      `json:"errors"`
	Warnings  int      `json:"warnings"`
	Pipelines []string `json:"pipelines"`
	// Online says what the online checks looked at, or why they were skipped.
	Online   string           `json:"online"`
	Findings []doctor.Finding `json:"findings"`
	// AsyncRoles are the IAM roles the asynchronous steps need.
	AsyncRoles []doctor.Role `json:"async_roles"`
}

func (d *doctorCmd) Run(ctx context.Context, cfg *Config, env *appEnv) error {
	// Pipeline files that fail to load are findings like any other: the
	// configuration checks go on, with the pipelines that did load.
	catalog, err := loadCatalog(cfg)
	loadFindings := doctor.PipelineFiles(err)
	var defs []*pipeline.Definition
	if catalog != nil {
		defs = catalog.All()
	}
	dc := d.config(cfg)
	online, note := doctor.CheckOnline(ctx, dc, defs, doctor.OnlineOptions{Offline: d.Offline, Timeout: d.OnlineTimeout})
	findings := doctor.Merge(loadFindings, doctor.Run(dc, defs), online)
	nerr, nwarn := doctor.Count(findings)
	failed := nerr > 0 || (d.Strict && nwarn > 0)
	if d.JSON {
		rep := doctorReport{OK: !failed, Errors: nerr, Warnings: nwarn, Online: note, Findings: findings, AsyncRoles: doctor.AsyncRoles(dc, defs)}
		if rep.AsyncRoles == nil {
			rep.AsyncRoles = []doctor.Role{}
		}
		rep.Pipelines = []string{}
		for _, p := range defs {
			rep.Pipelines = append(rep.Pipelines, p.Name)
		}
		if rep.Findings == nil {
			rep.Findings = []doctor.Finding{}
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("doctor: write report: %w", err)
		}
	} else {
		for _, f := range findings {
			fmt.Fprintf(env.stdout, "%s\n\n", f)
		}
		names := make([]string, 0, len(defs))
		for _, p := range defs {
			names = append(names, p.Name)
		}
		if len(names) == 0 {
			names = append(names, "none loaded")
		}
		printAsyncRoles(env, doctor.AsyncRoles(dc, defs))
		fmt.Fprintln(env.stdout, note)
		fmt.Fprintf(env.stdout, "%d error(s), %d warning(s); backend %s, pipelines %s\n", nerr, nwarn, cfg.Backend, strings.Join(names, ", "))
	}
	if failed {
		return exitCode{code: 1}
	}
	return nil
}

// config gathers what the doctor checks from the service configuration and
// the doctor's own flags.
func (d *doctorCmd) config(cfg *Config) doctor.Config {
	return doctor.Config{
		Backend: cfg.Backend, Auth: cfg.Auth, Project: cfg.Project,
		Region: d.Region, Service: d.Service,
		ServiceURL: cfg.ServiceURL, Audience: cfg.Audience,
		TasksLocation: cfg.TasksLocation, TasksQueue: cfg.TasksQueue,
		TasksAccount: cfg.TasksAccount, SchedulerAccount: d.SchedulerAccount,
		AllowedInvokers: cfg.AllowedInvokers, LeaseGrace: cfg.LeaseGrace.Duration,
		CloudRunTimeout: d.CloudRunTimeout, QueueMaxAttempts: d.QueueMaxAttempts,
		SchedulerRetries: d.SchedulerRetries, DiscordWebhookURL: d.DiscordURL,
		RuntimeAccount: d.RuntimeAccount,
	}
}

// printAsyncRoles lists the IAM roles the asynchronous steps need, each with
// the command that grants it.
func printAsyncRoles(env *appEnv, roles []doctor.Role) {
	if len(roles) == 0 {
		return
	}
	fmt.Fprintln(env.stdout, "IAM roles the asynchronous steps need, for the service's runtime account (deploy/ grants them: docs/deploy.md):")
	for _, r := range roles {
		fmt.Fprintf(env.stdout, "  pipeline %s, step %s (%s): %s on %s\n    why: %s\n    grant: %s\n", r.Pipeline, r.Step, r.Kind, r.Role, r.Resource, r.Why, r.Fix)
	}
	fmt.Fprintln(env.stdout)
}
