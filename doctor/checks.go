package doctor

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/queue/cloudtasks"
	"github.com/pipelinehq/pipeline/steps"
)

// A Check examines the configuration and the pipelines and reports findings.
type Check func(cfg Config, defs []*pipeline.Definition) []Finding

// Checks lists every offline check, in the order they are reported.
func Checks() []Check {
	return []Check{Backend, Audience, Invokers, Deadlines, Attempts, TimeZones, DSTGaps, SchedulerRetries, Discord, CheckIntervals}
}

// Run runs every offline check and returns the findings, errors first.
func Run(cfg Config, defs []*pipeline.Definition) []Finding {
	var out []Finding
	for _, c := range Checks() {
		out = append(out, c(cfg, defs)...)
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return int(b.Severity) - int(a.Severity) })
	return out
}

func gcp(cfg Config) bool { return cfg.Backend == "gcp" }

// Backend reports a service configured for local mode, or with auth off in
// the cloud: the cloud checks assume PIPELINE_BACKEND=gcp.
func Backend(cfg Config, _ []*pipeline.Definition) []Finding {
	if !gcp(cfg) {
		return []Finding{{
			Severity: SeverityWarning, Check: "backend",
			Problem: fmt.Sprintf("PIPELINE_BACKEND is %q, not gcp; the Cloud Run, Cloud Tasks and Scheduler checks were skipped", cfg.Backend),
			Why:     "a service deployed with the local backend keeps its ledger in the container's memory-backed disk and loses every run on restart",
			Fix:     cfg.runUpdate() + " --update-env-vars PIPELINE_BACKEND=gcp   (or run the doctor with --backend gcp and the service's env)",
		}}
	}
	if cfg.Auth == "off" {
		return []Finding{{
			Severity: SeverityError, Check: "auth",
			Problem: "PIPELINE_AUTH=off with the gcp backend",
			Why:     "the service refuses to start with auth off outside local mode (and, if it did start, anyone could start runs)",
			Fix:     cfg.runUpdate() + " --remove-env-vars PIPELINE_AUTH",
		}}
	}
	return nil
}

// Audience checks SERVICE_URL and OIDC_AUDIENCE. The service accepts tokens
// whose audience is OIDC_AUDIENCE, else SERVICE_URL exactly (a trailing slash
// included); Cloud Tasks signs with the same value, and Cloud Scheduler signs
// with the audience its job was given, which the deploy scripts set to the
// Cloud Run URL (no trailing slash).
func Audience(cfg Config, _ []*pipeline.Definition) []Finding {
	if !gcp(cfg) {
		return nil
	}
	describe := "gcloud run services describe " + cfg.service() + " --project " + cfg.project() + " --region " + cfg.region() + " --format='value(status.url)'"
	if cfg.ServiceURL == "" {
		return []Finding{{
			Severity: SeverityError, Check: "audience", Problem: "SERVICE_URL is not set",
			Why: "Cloud Tasks needs the URL to deliver steps to, and tokens are checked against it",
			Fix: "URL=$(" + describe + ") && " + cfg.runUpdate() + " --update-env-vars SERVICE_URL=$URL",
		}}
	}
	var out []Finding
	u, err := url.Parse(cfg.ServiceURL)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "":
		out = append(out, Finding{
			Severity: SeverityError, Check: "audience", Problem: fmt.Sprintf("SERVICE_URL %q is not an absolute https URL", cfg.ServiceURL),
			Why: "Cloud Tasks attaches OIDC tokens only to https targets, and Cloud Run serves only https",
			Fix: "URL=$(" + describe + ") && " + cfg.runUpdate() + " --update-env-vars SERVICE_URL=$URL",
		})
	case u.Path == "/":
		out = append(out, Finding{
			Severity: SeverityError, Check: "audience", Problem: fmt.Sprintf("SERVICE_URL %q ends with a slash", cfg.ServiceURL),
			Why: fmt.Sprintf("the expected token audience is SERVICE_URL exactly, %q, but Cloud Scheduler's tokens carry the Cloud Run URL without the slash: every scheduled start is refused with 401", cfg.ServiceURL),
			Fix: cfg.runUpdate() + " --update-env-vars SERVICE_URL=" + strings.TrimSuffix(cfg.ServiceURL, "/"),
		})
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "":
		out = append(out, Finding{
			Severity: SeverityError, Check: "audience", Problem: fmt.Sprintf("SERVICE_URL %q has a path, query or fragment", cfg.ServiceURL),
			Why: "steps are delivered to SERVICE_URL + /pipeline/steps/{step}, and the URL is the tokens' audience; it must be the bare service URL",
			Fix: cfg.runUpdate() + " --update-env-vars SERVICE_URL=" + u.Scheme + "://" + u.Host,
		})
	}
	if cfg.Audience != "" && cfg.Audience != cfg.ServiceURL {
		why := fmt.Sprintf("the service expects audience %q, but Cloud Scheduler's jobs are given the service URL as audience: their tokens are refused with 401 and no run starts", cfg.Audience)
		if strings.TrimSuffix(cfg.Audience, "/") == strings.TrimSuffix(cfg.ServiceURL, "/") {
			why = fmt.Sprintf("OIDC_AUDIENCE %q and SERVICE_URL %q differ only by a trailing slash, and audiences are compared exactly: Cloud Tasks signs with OIDC_AUDIENCE, but Cloud Scheduler's jobs carry the service URL, so every scheduled start gets 401", cfg.Audience, cfg.ServiceURL)
		}
		out = append(out, Finding{
			Severity: SeverityError, Check: "audience",
			Problem: fmt.Sprintf("OIDC_AUDIENCE %q is not SERVICE_URL %q", cfg.Audience, cfg.ServiceURL),
			Why:     why,
			Fix:     cfg.runUpdate() + " --remove-env-vars OIDC_AUDIENCE   (the audience is then SERVICE_URL exactly)",
		})
	}
	return out
}

// Invokers checks that the Cloud Tasks and Cloud Scheduler service accounts
// are on ALLOWED_INVOKERS: a token from any other caller is refused with 403.
func Invokers(cfg Config, _ []*pipeline.Definition) []Finding {
	if !gcp(cfg) || cfg.Auth == "off" {
		return nil
	}
	var out []Finding
	allowed := map[string]bool{}
	for _, a := range cfg.AllowedInvokers {
		allowed[a] = true
		if a != strings.TrimSpace(a) || a != strings.ToLower(a) || !strings.Contains(a, "@") {
			out = append(out, Finding{
				Severity: SeverityWarning, Check: "invokers", Subject: fmt.Sprintf("ALLOWED_INVOKERS entry %q", a),
				Problem: "is not a lower-case email without spaces",
				Why:     "callers are matched by the email in their token, exactly; this entry matches no one",
				Fix:     cfg.runUpdate() + " --update-env-vars '^|^ALLOWED_INVOKERS=" + strings.Join(cleanList(cfg.AllowedInvokers), ",") + "'",
			})
		}
	}
	want := cleanList(append(slices.Clone(cfg.AllowedInvokers), cfg.TasksAccount, cfg.SchedulerAccount))
	fix := cfg.runUpdate() + " --update-env-vars '^|^ALLOWED_INVOKERS=" + strings.Join(want, ",") + "'"
	role := func(who, sa string) Finding {
		return Finding{
			Severity: SeverityError, Check: "invokers", Subject: who,
			Problem: fmt.Sprintf("%s is not on ALLOWED_INVOKERS", sa),
			Fix:     fix,
		}
	}
	switch {
	case cfg.TasksAccount == "":
		out = append(out, Finding{
			Severity: SeverityError, Check: "invokers", Subject: "Cloud Tasks",
			Problem: "TASKS_SERVICE_ACCOUNT is not set",
			Why:     "tasks are created with this identity in their OIDC token; without it no step is ever delivered",
			Fix:     cfg.runUpdate() + " --update-env-vars TASKS_SERVICE_ACCOUNT=" + cfg.service() + "-tasks@" + cfg.project() + ".iam.gserviceaccount.com",
		})
	case !allowed[cfg.TasksAccount]:
		f := role("Cloud Tasks", cfg.TasksAccount)
		f.Why = "every step delivery is refused with 403 and retried until the queue gives up: the chain never gets past its start"
		out = append(out, f)
	}
	switch {
	case cfg.SchedulerAccount == "":
		out = append(out, Finding{
			Severity: SeverityWarning, Check: "invokers", Subject: "Cloud Scheduler",
			Problem: "SCHEDULER_SERVICE_ACCOUNT is not set, so the doctor cannot check Cloud Scheduler's identity",
			Why:     "if the Scheduler jobs' OIDC account is not on ALLOWED_INVOKERS, every scheduled start gets 403",
			Fix:     "gcloud scheduler jobs describe " + cfg.jobName("PIPELINE") + " --project " + cfg.project() + " --location " + cfg.region() + " --format='value(httpTarget.oidcToken.serviceAccountEmail)'   then run the doctor with SCHEDULER_SERVICE_ACCOUNT set",
		})
	case !allowed[cfg.SchedulerAccount]:
		f := role("Cloud Scheduler", cfg.SchedulerAccount)
		f.Why = "every scheduled start is refused with 403: no daily run is created"
		out = append(out, f)
	}
	for _, sa := range []string{cfg.TasksAccount, cfg.SchedulerAccount} {
		if sa == "" {
			continue
		}
		if p := ServiceAccountProblem(sa); p != "" {
			out = append(out, Finding{
				Severity: SeverityWarning, Check: "invokers", Subject: sa,
				Problem: "is not a service account email: " + p,
				Why:     "Cloud Tasks and Cloud Scheduler can only sign tokens as a service account; " + accountRule,
				Fix:     "gcloud iam service-accounts list --project " + cfg.project(),
			})
		}
	}
	return out
}

func cleanList(vs []string) []string {
	var out []string
	for _, v := range vs {
		v = strings.ToLower(strings.TrimSpace(v))
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// TaskDeadline is how long a step's delivery may take: its timeout plus half
// the lease grace (what the orchestrator asks of the queue). An asynchronous
// step's timeout bounds its whole wait, not a request: each of its requests
// takes at most pipeline.AsyncRequestTimeout.
func TaskDeadline(step *pipeline.StepDef, leaseGrace time.Duration) time.Duration {
	if _, ok := step.Body.(steps.AsyncStep); ok {
		return min(step.Timeout, pipeline.AsyncRequestTimeout) + leaseGrace/2
	}
	return step.Timeout + leaseGrace/2
}

// Deadlines checks every step's timeout against Cloud Tasks' dispatch
// deadline (at most 30 min) and Cloud Run's request timeout. A step that
// outlives either is cut off while it still runs: the queue retries into a
// held lease (409) and the attempt is wasted, or the step never finishes.
func Deadlines(cfg Config, defs []*pipeline.Definition) []Finding {
	var out []Finding
	runTimeout := cfg.runTimeout()
	if gcp(cfg) && runTimeout > MaxCloudRunTimeout {
		out = append(out, Finding{
			Severity: SeverityError, Check: "deadlines", Subject: "Cloud Run",
			Problem: fmt.Sprintf("CLOUD_RUN_TIMEOUT %s is above Cloud Run's maximum %s", runTimeout, MaxCloudRunTimeout),
			Why:     "Cloud Run refuses the setting, so the service keeps its old timeout",
			Fix:     cfg.runUpdate() + " --timeout=1800",
		})
	}
	for _, d := range defs {
		for _, s := range d.Steps {
			subject := fmt.Sprintf("pipeline %s, step %s", d.Name, s.Name)
			need := TaskDeadline(s, cfg.LeaseGrace)
			maxTimeout := cloudtasks.MaxDispatchDeadline - cloudtasks.DeadlineMargin - cfg.LeaseGrace/2
			if need+cloudtasks.DeadlineMargin > cloudtasks.MaxDispatchDeadline {
				out = append(out, Finding{
					Severity: SeverityError, Check: "deadlines", Subject: subject,
					Problem: fmt.Sprintf("timeout %s needs a dispatch deadline of %s, above Cloud Tasks' maximum %s", s.Timeout, need+cloudtasks.DeadlineMargin, cloudtasks.MaxDispatchDeadline),
					Why:     "Cloud Tasks gives up on the delivery at 30 min while the step still runs, retries into the held lease (409) and counts a failed attempt each time",
					Fix:     fmt.Sprintf("set `timeout: %s` or less on step %s in the pipeline file (or split the step), then redeploy", maxTimeout, s.Name),
				})
			}
			if gcp(cfg) && need > runTimeout {
				secs := int((min(max(need+cloudtasks.DeadlineMargin, 60*time.Second), MaxCloudRunTimeout) + time.Second - 1) / time.Second)
				out = append(out, Finding{
					Severity: SeverityError, Check: "deadlines", Subject: subject,
					Problem: fmt.Sprintf("timeout %s (task deadline %s with half the lease grace) is longer than Cloud Run's request timeout %s", s.Timeout, need, runTimeout),
					Why:     "Cloud Run ends the request with 504 before the step's own timeout: a long step fails every attempt and the chain stops",
					Fix:     fmt.Sprintf("%s --timeout=%d   (and CLOUD_RUN_TIMEOUT=%ds for the doctor), or lower the step's timeout", cfg.runUpdate(), secs, secs),
				})
			}
		}
	}
	return out
}

// Attempts checks step attempt limits, and that the queue retries a task at
// least once more than any step's max_attempts: the handler counts attempts
// and marks a step failed (and notifies) only if the queue delivers it again.
func Attempts(cfg Config, defs []*pipeline.Definition) []Finding {
	var out []Finding
	most := 0
	for _, d := range defs {
		for _, s := range d.Steps {
			most = max(most, s.MaxAttempts)
			if s.MaxAttempts < 1 {
				out = append(out, Finding{
					Severity: SeverityError, Check: "attempts", Subject: fmt.Sprintf("pipeline %s, step %s", d.Name, s.Name),
					Problem: fmt.Sprintf("max_attempts is %d", s.MaxAttempts),
					Why:     "a step with no attempt is never run: the chain stops there",
					Fix:     fmt.Sprintf("set `max_attempts: %d` (or more) on step %s in the pipeline file", pipeline.DefaultMaxAttempts, s.Name),
				})
			}
		}
	}
	if gcp(cfg) && cfg.QueueMaxAttempts > 0 && cfg.QueueMaxAttempts <= most {
		want := max(most+1, 25)
		out = append(out, Finding{
			Severity: SeverityError, Check: "attempts", Subject: "Cloud Tasks queue " + orPlaceholder(cfg.TasksQueue, "QUEUE"),
			Problem: fmt.Sprintf("the queue's max_attempts %d is not above the largest step max_attempts %d", cfg.QueueMaxAttempts, most),
			Why:     "the queue drops a task before the step has used its attempts (a 409 while a lease is held also uses one), so the step is never marked failed, nobody is notified, and the chain silently stops",
			Fix:     fmt.Sprintf("gcloud tasks queues update %s --project %s --location %s --max-attempts=%d", orPlaceholder(cfg.TasksQueue, "QUEUE"), cfg.project(), orPlaceholder(cfg.TasksLocation, "LOCATION"), want),
		})
	}
	return out
}

// TimeZones checks each pipeline's time zone: Cloud Scheduler takes IANA
// names only, and a pipeline left at UTC takes its run date in UTC.
func TimeZones(cfg Config, defs []*pipeline.Definition) []Finding {
	var out []Finding
	for _, d := range defs {
		subject := "pipeline " + d.Name
		_, err := time.LoadLocation(d.TimeZone)
		switch {
		case d.TimeZone == "" || d.TimeZone == "Local" || err != nil:
			out = append(out, Finding{
				Severity: SeverityError, Check: "time-zone", Subject: subject,
				Problem: fmt.Sprintf("time_zone %q is not an IANA time zone name", d.TimeZone),
				Why:     "Cloud Scheduler refuses the job, and the run date would depend on the machine",
				Fix:     "set `time_zone: Europe/Paris` (your zone) in the pipeline file, then: gcloud scheduler jobs update http " + cfg.jobName(d.Name) + " --project " + cfg.project() + " --location " + cfg.region() + " --time-zone=Europe/Paris",
			})
		case d.TimeZone == "UTC" || d.TimeZone == "Etc/UTC" || d.TimeZone == "Etc/GMT" || d.TimeZone == "GMT":
			out = append(out, Finding{
				Severity: SeverityWarning, Check: "time-zone", Subject: subject,
				Problem: "time zone is UTC (the default when time_zone is left out)",
				Why:     fmt.Sprintf("the schedule %q fires in UTC and each run is keyed by the UTC date; if the business day is elsewhere, runs near midnight get the wrong date", d.Schedule),
				Fix:     "if that is not intended, set `time_zone: Europe/Paris` (your zone) in the pipeline file and redeploy the Scheduler job: gcloud scheduler jobs update http " + cfg.jobName(d.Name) + " --project " + cfg.project() + " --location " + cfg.region() + " --time-zone=Europe/Paris",
			})
		}
	}
	return out
}

// SchedulerRetries warns when the Scheduler jobs do not retry: starting a
// run is idempotent, so retries are safe, and without them one 5xx or
// timeout (a deploy, a cold start) loses the day's run.
func SchedulerRetries(cfg Config, defs []*pipeline.Definition) []Finding {
	if !gcp(cfg) || cfg.SchedulerRetries != 0 {
		return nil
	}
	var out []Finding
	for _, d := range defs {
		if d.Schedule == "" {
			continue
		}
		out = append(out, Finding{
			Severity: SeverityWarning, Check: "scheduler-retries", Subject: "Scheduler job " + cfg.jobName(d.Name),
			Problem: "the job does not retry a failed start (retry count 0)",
			Why:     "one 5xx, 429 or timeout of POST /pipeline/start loses that day's run; starts are idempotent, so retrying is safe",
			Fix:     "gcloud scheduler jobs update http " + cfg.jobName(d.Name) + " --project " + cfg.project() + " --location " + cfg.region() + " --max-retry-attempts=3 --min-backoff=30s",
		})
	}
	return out
}

var (
	discordHosts = []string{"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"}
	discordPath  = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^/api(/v[0-9]+)?/webhooks/[0-9]{1,20}/[A-Za-z0-9_.-]{1,200}$`)
	})
)

// Discord checks the shape of DISCORD_WEBHOOK_URL:
// https://discord.com/api/webhooks/{id}/{token}. The token is never printed.
func Discord(cfg Config, _ []*pipeline.Definition) []Finding {
	secretFix := "printf %s 'https://discord.com/api/webhooks/ID/TOKEN' | gcloud secrets versions add " + cfg.service() + "-discord-webhook --project " + cfg.project() + " --data-file=-   (then redeploy so the service reads the new version)"
	if cfg.DiscordWebhookURL == "" {
		return []Finding{{
			Severity: SeverityWarning, Check: "discord",
			Problem: "DISCORD_WEBHOOK_URL is not set",
			Why:     "run completions and failures are only logged; nobody is told when a chain fails",
			Fix:     secretFix,
		}}
	}
	u, err := url.Parse(cfg.DiscordWebhookURL)
	problem := ""
	switch {
	case err != nil:
		problem = "is not a URL"
	case u.Scheme != "https":
		problem = "is not https"
	case u.User != nil:
		problem = "carries user info"
	case !discordPath().MatchString(strings.TrimSuffix(u.Path, "/")):
		problem = "does not have the path /api/webhooks/{numeric id}/{token}"
	case u.RawQuery != "" && !onlyThreadID(u.Query()):
		problem = "has a query other than thread_id"
	}
	if problem != "" {
		return []Finding{{
			Severity: SeverityError, Check: "discord",
			Problem: "DISCORD_WEBHOOK_URL " + problem + " (expected https://discord.com/api/webhooks/{id}/{token})",
			Why:     "the service refuses to start with a malformed webhook, or every notification fails: nobody hears about failed chains",
			Fix:     secretFix,
		}}
	}
	if !slices.Contains(discordHosts, u.Host) {
		return []Finding{{
			Severity: SeverityWarning, Check: "discord",
			Problem: fmt.Sprintf("DISCORD_WEBHOOK_URL has host %q, not discord.com", u.Host),
			Why:     "notifications go to that host as given; fine for a proxy, wrong for a mistyped URL",
			Fix:     secretFix,
		}}
	}
	return nil
}

func onlyThreadID(q url.Values) bool {
	for k := range q {
		if k != "thread_id" {
			return false
		}
	}
	return true
}
