package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Cloud Scheduler facts the job checks use.
const (
	// schedulerDefaultDeadline is an HTTP job's attempt deadline when none is set.
	schedulerDefaultDeadline = 3 * time.Minute
	// reconcileSchedule and reconcileDeadline are the deploy scripts' reconcile tick.
	reconcileSchedule = "*/5 * * * *"
	reconcileDeadline = 120 * time.Second
)

// reconcileStops is what stops when the reconcile tick (the sweeper) does.
const reconcileStops = "stalled steps are never re-driven and missed starts and late runs go unreported"

// wantJob is a Scheduler job as the deploy scripts create it.
type wantJob struct {
	sched     Schedule // zero for the reconcile tick
	name      string
	path      string
	body      string
	reconcile bool
}

// jobs checks each scheduled pipeline's Scheduler job and the reconcile tick.
func (o Online) jobs(ctx context.Context, cfg Config, defs []*pipeline.Definition) []Finding {
	region := cfg.liveRegion()
	if region == "" {
		return []Finding{regionUnknown("the Scheduler jobs were")}
	}
	var wants []wantJob
	for _, s := range Schedules(defs) {
		wants = append(wants, wantJob{sched: s, name: cfg.jobName(s.Pipeline), path: "/pipeline/start", body: fmt.Sprintf(`{"pipeline":%q}`, s.Pipeline)})
	}
	wants = append(wants, wantJob{name: cfg.jobName("reconcile"), path: "/pipeline/reconcile", body: "{}", reconcile: true,
		sched: Schedule{Schedule: reconcileSchedule, TimeZone: "Etc/UTC", AttemptDeadline: reconcileDeadline}})
	var out []Finding
	for _, w := range wants {
		name := fmt.Sprintf("projects/%s/locations/%s/jobs/%s", cfg.Project, region, w.name)
		job, err := get(ctx, o, name, o.Cloud.GetJob)
		switch {
		case notFound(err):
			out = append(out, missingJob(cfg, w, name))
			continue
		case err != nil:
			// One warning for the API, not one per job (and no more waiting).
			return append(out, o.unreachable(cfg, schedulerAPI, "job "+name, err))
		}
		out = append(out, checkJob(cfg, w, job)...)
	}
	return out
}

// jobFlags are the flags of `gcloud scheduler jobs create http` that give a
// job its target and schedule.
func jobFlags(cfg Config, w wantJob) string {
	retries := 3
	if w.reconcile {
		retries = 0
	}
	return fmt.Sprintf("--schedule='%s' --time-zone=%s --attempt-deadline=%ds --uri=%s%s --http-method=POST --message-body='%s' --oidc-service-account-email=%s --oidc-token-audience=%s --max-retry-attempts=%d --min-backoff=30s --max-backoff=300s",
		w.sched.Schedule, w.sched.TimeZone, int(w.sched.AttemptDeadline/time.Second), orPlaceholder(cfg.ServiceURL, "SERVICE_URL"), w.path, w.body,
		cfg.schedulerAccount(), orPlaceholder(cfg.ServiceURL, "SERVICE_URL"), retries)
}

// schedulerAccount is SCHEDULER_SERVICE_ACCOUNT, else the deploy scripts' name.
func (c Config) schedulerAccount() string {
	return firstNonEmpty(c.SchedulerAccount, c.service()+"-scheduler@"+c.project()+".iam.gserviceaccount.com")
}

func (c Config) jobUpdate(job string) string {
	return "gcloud scheduler jobs update http " + job + " --project " + c.project() + " --location " + c.liveRegion()
}

func missingJob(cfg Config, w wantJob, name string) Finding {
	f := Finding{
		Severity: SeverityError, Check: "scheduler", Subject: "Scheduler job " + w.name,
		Problem: fmt.Sprintf("does not exist (%s)", name),
		Why:     fmt.Sprintf("nothing starts pipeline %s: no run is created on its schedule", w.sched.Pipeline),
		Fix:     "gcloud scheduler jobs create http " + w.name + " --project " + cfg.Project + " --location " + cfg.liveRegion() + " " + jobFlags(cfg, w) + " --headers=Content-Type=application/json",
	}
	if w.reconcile {
		f.Why = "nothing re-drives a step whose task was lost or fails a run past its max_run_duration, and no missed-start or late-run alert is sent: " + reconcileStops
	}
	if cfg.Service == "" {
		f.Problem += fmt.Sprintf("; jobs are named SERVICE-PIPELINE and the service name is not known, so %q was assumed (set --service or K_SERVICE)", DefaultService)
	}
	return f
}

// checkJob compares one job with what the deploy scripts create.
func checkJob(cfg Config, w wantJob, job *schedulerpb.Job) []Finding {
	var out []Finding
	subject := "Scheduler job " + w.name
	add := func(sev Severity, problem, why, fix string) {
		out = append(out, Finding{Severity: sev, Check: "scheduler", Subject: subject, Problem: problem, Why: why, Fix: fix})
	}
	update := cfg.jobUpdate(w.name)
	stops := "no run starts"
	if w.reconcile {
		stops = reconcileStops
	}
	switch st := job.GetState(); st {
	case schedulerpb.Job_ENABLED:
	case schedulerpb.Job_UPDATE_FAILED:
		add(SeverityError, "its last update failed (state UPDATE_FAILED)", "the job may not fire as configured: "+stops, update+" "+jobFlags(cfg, w))
	default:
		fix := "gcloud scheduler jobs resume " + w.name + " --project " + cfg.project() + " --location " + cfg.liveRegion()
		why := "the job does not fire: " + stops
		if !w.reconcile {
			why += " (intended if it was paused with `pipeline pause " + w.sched.Pipeline + "`)"
			fix = "pipeline unpause " + w.sched.Pipeline + " (resumes the job and the ledger's pause together), or " + fix
		}
		add(SeverityError, fmt.Sprintf("is %s, not ENABLED", st), why, fix)
	}
	ht := job.GetHttpTarget()
	if ht == nil {
		add(SeverityError, "is not an HTTP job", "only an HTTP job with an OIDC token can call the service",
			"gcloud scheduler jobs delete "+w.name+" --project "+cfg.project()+" --location "+cfg.liveRegion()+" --quiet && gcloud scheduler jobs create http "+w.name+" --project "+cfg.project()+" --location "+cfg.liveRegion()+" "+jobFlags(cfg, w)+" --headers=Content-Type=application/json")
		return out
	}
	if cfg.ServiceURL != "" {
		if want := cfg.ServiceURL + w.path; ht.GetUri() != want {
			add(SeverityError, fmt.Sprintf("calls %s, not %s", ht.GetUri(), want),
				"the call misses the service's "+w.path+" route (404, or another service): "+stops,
				update+" --uri="+want)
		}
	}
	if m := ht.GetHttpMethod(); m != schedulerpb.HttpMethod_POST {
		add(SeverityError, fmt.Sprintf("uses HTTP method %s, not POST", m), w.path+" answers POST only (405): "+stops, update+" --http-method=POST")
	}
	oidc := ht.GetOidcToken()
	if oidc == nil {
		add(SeverityError, "sends no OIDC token", "Cloud Run and the service accept only a Google-signed OIDC token (an OAuth token or none gets 401/403): "+stops,
			update+" --oidc-service-account-email="+cfg.schedulerAccount()+" --oidc-token-audience="+orPlaceholder(cfg.ServiceURL, "SERVICE_URL"))
	} else {
		out = append(out, checkJobToken(cfg, w, ht.GetUri(), oidc, stops)...)
	}
	if w.reconcile {
		return out
	}
	if strings.Join(strings.Fields(job.GetSchedule()), " ") != strings.Join(strings.Fields(w.sched.Schedule), " ") {
		add(SeverityWarning, fmt.Sprintf("has schedule %q, but the pipeline file says %q", job.GetSchedule(), w.sched.Schedule),
			"runs start at another time than the file says (the job was edited by hand or not redeployed); the next deploy reverts it",
			update+" --schedule='"+w.sched.Schedule+"'")
	}
	if !sameZone(job.GetTimeZone(), w.sched.TimeZone) {
		add(SeverityError, fmt.Sprintf("has time zone %q, but the pipeline file says %q", job.GetTimeZone(), w.sched.TimeZone),
			"the job fires at the schedule's hour in the wrong zone while the run is dated in the pipeline's zone: starts come at the wrong hour, and near midnight a run takes another day's date (a duplicate run, or a day without one)",
			update+" --time-zone="+w.sched.TimeZone)
	}
	deadline := schedulerDefaultDeadline
	if job.GetAttemptDeadline() != nil {
		deadline = job.GetAttemptDeadline().AsDuration()
	}
	if deadline < w.sched.AttemptDeadline {
		add(SeverityWarning, fmt.Sprintf("attempt deadline %s is below %s (30 s plus 15 s per root step)", deadline, w.sched.AttemptDeadline),
			"Cloud Scheduler stops waiting while POST /pipeline/start still creates the run and enqueues its roots, logs a failure and retries; starts are idempotent, so the run is not doubled, but the job looks failed",
			fmt.Sprintf("%s --attempt-deadline=%ds", update, int(w.sched.AttemptDeadline/time.Second)))
	}
	if job.GetRetryConfig().GetRetryCount() == 0 {
		// Worded as the offline SchedulerRetries check, so Merge keeps one.
		out = append(out, Finding{
			Severity: SeverityWarning, Check: "scheduler-retries", Subject: subject,
			Problem: "the job does not retry a failed start (retry count 0)",
			Why:     "one 5xx, 429 or timeout of POST /pipeline/start loses that day's run; starts are idempotent, so retrying is safe",
			Fix:     update + " --max-retry-attempts=3 --min-backoff=30s",
		})
	}
	return out
}

// checkJobToken checks the identity and audience of a job's OIDC token.
func checkJobToken(cfg Config, w wantJob, uri string, oidc *schedulerpb.OidcToken, stops string) []Finding {
	var out []Finding
	subject := "Scheduler job " + w.name
	update := cfg.jobUpdate(w.name)
	sa := oidc.GetServiceAccountEmail()
	switch {
	case cfg.SchedulerAccount != "" && !strings.EqualFold(sa, cfg.SchedulerAccount):
		out = append(out, Finding{
			Severity: SeverityError, Check: "scheduler", Subject: subject,
			Problem: fmt.Sprintf("signs its token as %s, not SCHEDULER_SERVICE_ACCOUNT %s", sa, cfg.SchedulerAccount),
			Why:     "the invoker checks (ALLOWED_INVOKERS, run.invoker) are set up for SCHEDULER_SERVICE_ACCOUNT; another account gets 403 from Cloud Run or the service: " + stops,
			Fix:     update + " --oidc-service-account-email=" + cfg.SchedulerAccount,
		})
	case cfg.SchedulerAccount == "" && !slices.ContainsFunc(cfg.AllowedInvokers, func(a string) bool { return strings.EqualFold(strings.TrimSpace(a), sa) }):
		out = append(out, Finding{
			Severity: SeverityError, Check: "scheduler", Subject: subject,
			Problem: fmt.Sprintf("signs its token as %s, which is not on ALLOWED_INVOKERS", sa),
			Why:     "the service refuses the call with 403: " + stops,
			Fix:     cfg.runUpdate() + " --update-env-vars '^|^ALLOWED_INVOKERS=" + strings.Join(cleanList(append(slices.Clone(cfg.AllowedInvokers), sa)), ",") + "'",
		})
	}
	if cfg.ServiceURL == "" {
		return out
	}
	aud, given := oidc.GetAudience(), "audience"
	if aud == "" {
		aud, given = uri, "audience (none set, so the job's URI)"
	}
	if aud != cfg.ServiceURL {
		why := fmt.Sprintf("the service accepts only tokens whose audience is SERVICE_URL exactly, %q: every call gets 401, %s", cfg.ServiceURL, stops)
		if strings.TrimSuffix(aud, "/") == strings.TrimSuffix(cfg.ServiceURL, "/") {
			why = fmt.Sprintf("%q and SERVICE_URL %q differ only by a trailing slash, and audiences are compared exactly: every call gets 401, %s", aud, cfg.ServiceURL, stops)
		}
		out = append(out, Finding{
			Severity: SeverityError, Check: "scheduler", Subject: subject,
			Problem: fmt.Sprintf("its OIDC %s is %q, not SERVICE_URL %q", given, aud, cfg.ServiceURL),
			Why:     why,
			Fix:     update + " --oidc-token-audience=" + cfg.ServiceURL,
		})
	}
	return out
}

// utcNames are the time zone names that all mean UTC.
var utcNames = []string{"", "UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Etc/UCT", "Zulu", "Etc/Zulu", "Universal", "Etc/Universal"}

// sameZone compares IANA names, taking every name of UTC (and none, which
// Cloud Scheduler reads as UTC) as one.
func sameZone(a, b string) bool {
	return a == b || slices.Contains(utcNames, a) && slices.Contains(utcNames, b)
}
