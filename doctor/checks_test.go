package doctor_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/doctor"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
	"github.com/pipelinehq/pipeline/steps/example"
)

const (
	url      = "https://pipeline-prod-abc123-ew.a.run.app"
	tasksSA  = "pipeline-prod-tasks@acme.iam.gserviceaccount.com"
	schedSA  = "pipeline-prod-scheduler@acme.iam.gserviceaccount.com"
	hookOK   = "https://discord.com/api/webhooks/123456789012345678/abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789abcdef"
	hookTok  = "abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789abcdef"
	location = "europe-west1"
)

// good is a configuration as the deploy scripts set it up.
func good() doctor.Config {
	return doctor.Config{
		Backend: "gcp", Auth: "on", Project: "acme", Service: "pipeline-prod",
		ServiceURL: url, TasksLocation: location, TasksQueue: "pipeline-prod",
		TasksAccount: tasksSA, SchedulerAccount: schedSA, AllowedInvokers: []string{tasksSA, schedSA},
		LeaseGrace: 30 * time.Second, CloudRunTimeout: 1800 * time.Second,
		QueueMaxAttempts: 25, SchedulerRetries: 3, DiscordWebhookURL: hookOK,
	}
}

// daily loads the repository's example pipeline with the real loader.
func daily(t *testing.T) []*pipeline.Definition {
	t.Helper()
	reg := steps.NewRegistry()
	example.Register(reg, t.TempDir())
	cat, err := pipeline.LoadFiles([]string{filepath.Join("..", "pipelines", "daily.yaml")}, reg)
	if err != nil {
		t.Fatal(err)
	}
	return cat.All()
}

func def(name, tz string, stepDefs ...*pipeline.StepDef) *pipeline.Definition {
	return &pipeline.Definition{Name: name, TimeZone: tz, Schedule: "0 6 * * *", Steps: stepDefs}
}

func step(name string, timeout time.Duration, attempts int) *pipeline.StepDef {
	return &pipeline.StepDef{Name: name, Kind: "noop", Timeout: timeout, MaxAttempts: attempts}
}

func TestGoodConfigHasNoFindings(t *testing.T) {
	if fs := doctor.Run(good(), daily(t)); len(fs) != 0 {
		t.Fatalf("want no findings, got:\n%s", render(fs))
	}
}

func render(fs []doctor.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

func TestFindings(t *testing.T) {
	type want struct {
		check    string
		severity doctor.Severity
		text     string // in Problem, Why or Subject
		fix      string // in Fix
	}
	cases := []struct {
		name string
		edit func(c *doctor.Config)
		defs []*pipeline.Definition
		want []want
	}{
		{"service url missing", func(c *doctor.Config) { c.ServiceURL = "" }, nil,
			[]want{{"audience", doctor.SeverityError, "SERVICE_URL is not set", "gcloud run services describe pipeline-prod"}}},
		{"service url trailing slash", func(c *doctor.Config) { c.ServiceURL = url + "/" }, nil,
			[]want{{"audience", doctor.SeverityError, "ends with a slash", "--update-env-vars SERVICE_URL=" + url}}},
		{"service url http", func(c *doctor.Config) { c.ServiceURL = "http://pipeline.example.com" }, nil,
			[]want{{"audience", doctor.SeverityError, "not an absolute https URL", "gcloud run services"}}},
		{"service url with path", func(c *doctor.Config) { c.ServiceURL = url + "/pipeline" }, nil,
			[]want{{"audience", doctor.SeverityError, "has a path", "SERVICE_URL=" + url}}},
		{"audience differs", func(c *doctor.Config) { c.Audience = "https://other.example.com" }, nil,
			[]want{{"audience", doctor.SeverityError, "is not SERVICE_URL", "--remove-env-vars OIDC_AUDIENCE"}}},
		{"audience trailing slash only", func(c *doctor.Config) { c.Audience = url + "/" }, nil,
			[]want{{"audience", doctor.SeverityError, "differ only by a trailing slash", "--remove-env-vars OIDC_AUDIENCE"}}},
		{"tasks account not allowed", func(c *doctor.Config) { c.AllowedInvokers = []string{schedSA} }, nil,
			[]want{{"invokers", doctor.SeverityError, tasksSA + " is not on ALLOWED_INVOKERS", "'^|^ALLOWED_INVOKERS=" + schedSA + "," + tasksSA + "'"}}},
		{"scheduler account not allowed", func(c *doctor.Config) { c.AllowedInvokers = []string{tasksSA} }, nil,
			[]want{{"invokers", doctor.SeverityError, "every scheduled start is refused with 403", "ALLOWED_INVOKERS=" + tasksSA + "," + schedSA}}},
		{"tasks account unset", func(c *doctor.Config) { c.TasksAccount = "" }, nil,
			[]want{{"invokers", doctor.SeverityError, "TASKS_SERVICE_ACCOUNT is not set", "TASKS_SERVICE_ACCOUNT="}}},
		{"scheduler account unknown", func(c *doctor.Config) { c.SchedulerAccount = "" }, nil,
			[]want{{"invokers", doctor.SeverityWarning, "SCHEDULER_SERVICE_ACCOUNT is not set", "gcloud scheduler jobs describe"}}},
		{"invoker entry with capitals", func(c *doctor.Config) {
			c.AllowedInvokers = []string{tasksSA, schedSA, "Someone@Example.com"}
		}, nil, []want{{"invokers", doctor.SeverityWarning, "not a lower-case email", "someone@example.com"}}},
		{"tasks account not a service account", func(c *doctor.Config) {
			c.TasksAccount = "alice@example.com"
			c.AllowedInvokers = []string{"alice@example.com", schedSA}
		}, nil, []want{{"invokers", doctor.SeverityWarning, "is not a service account email: domain \"example.com\" is not a service account's", "gcloud iam service-accounts list"}}},
		{"step longer than Cloud Run timeout", func(c *doctor.Config) { c.CloudRunTimeout = 0 }, // default 300s
			[]*pipeline.Definition{def("nightly", "Europe/Paris", step("load", 10*time.Minute, 3))},
			[]want{{"deadlines", doctor.SeverityError, "longer than Cloud Run's request timeout 5m0s", "--timeout=645"}}},
		{"step longer than the dispatch deadline", func(c *doctor.Config) { c.CloudRunTimeout = time.Hour },
			[]*pipeline.Definition{def("nightly", "Europe/Paris", step("load", 29*time.Minute+50*time.Second, 3))},
			[]want{{"deadlines", doctor.SeverityError, "above Cloud Tasks' maximum 30m0s", "timeout: 29m15s"}}},
		{"Cloud Run timeout above its maximum", func(c *doctor.Config) { c.CloudRunTimeout = 2 * time.Hour }, nil,
			[]want{{"deadlines", doctor.SeverityError, "above Cloud Run's maximum", "--timeout=1800"}}},
		{"no attempts", nil,
			[]*pipeline.Definition{def("nightly", "Europe/Paris", step("load", time.Minute, 0))},
			[]want{{"attempts", doctor.SeverityError, "max_attempts is 0", "max_attempts: 3"}}},
		{"queue gives up before the steps", func(c *doctor.Config) { c.QueueMaxAttempts = 3 }, nil,
			[]want{{"attempts", doctor.SeverityError, "max_attempts 3 is not above the largest step max_attempts 3", "gcloud tasks queues update pipeline-prod --project acme --location europe-west1 --max-attempts=25"}}},
		{"time zone Local", nil,
			[]*pipeline.Definition{def("nightly", "Local", step("load", time.Minute, 3))},
			[]want{{"time-zone", doctor.SeverityError, `time_zone "Local" is not an IANA`, "gcloud scheduler jobs update http pipeline-prod-nightly"}}},
		{"time zone unknown", nil,
			[]*pipeline.Definition{def("nightly", "Mars/Olympus", step("load", time.Minute, 3))},
			[]want{{"time-zone", doctor.SeverityError, "not an IANA", "--time-zone="}}},
		{"time zone left at UTC", nil,
			[]*pipeline.Definition{def("nightly", "UTC", step("load", time.Minute, 3))},
			[]want{{"time-zone", doctor.SeverityWarning, "time zone is UTC", "--time-zone="}}},
		{"scheduler does not retry", func(c *doctor.Config) { c.SchedulerRetries = 0 }, nil,
			[]want{{"scheduler-retries", doctor.SeverityWarning, "retry count 0", "gcloud scheduler jobs update http pipeline-prod-daily --project acme --location europe-west1 --max-retry-attempts=3"}}},
		{"no discord", func(c *doctor.Config) { c.DiscordWebhookURL = "" }, nil,
			[]want{{"discord", doctor.SeverityWarning, "DISCORD_WEBHOOK_URL is not set", "gcloud secrets versions add pipeline-prod-discord-webhook"}}},
		{"discord wrong host", func(c *doctor.Config) {
			c.DiscordWebhookURL = "https://evil.example.com/api/webhooks/123456789012345678/" + hookTok
		}, nil, []want{{"discord", doctor.SeverityWarning, `host "evil.example.com"`, "gcloud secrets versions add"}}},
		{"discord channel URL", func(c *doctor.Config) {
			c.DiscordWebhookURL = "https://discord.com/channels/123456789012345678/123456789012345678"
		}, nil, []want{{"discord", doctor.SeverityError, "/api/webhooks/{numeric id}/{token}", "gcloud secrets"}}},
		{"discord http", func(c *doctor.Config) {
			c.DiscordWebhookURL = "http://discord.com/api/webhooks/123456789012345678/" + hookTok
		}, nil, []want{{"discord", doctor.SeverityError, "is not https", "gcloud secrets"}}},
		{"local backend", func(c *doctor.Config) { c.Backend = "local"; c.ServiceURL = "" }, nil,
			[]want{{"backend", doctor.SeverityWarning, "not gcp", "PIPELINE_BACKEND=gcp"}}},
		{"auth off", func(c *doctor.Config) { c.Auth = "off" }, nil,
			[]want{{"auth", doctor.SeverityError, "PIPELINE_AUTH=off", "--remove-env-vars PIPELINE_AUTH"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			defs := tc.defs
			if defs == nil {
				defs = daily(t)
			}
			got := doctor.Run(cfg, defs)
			if len(got) != len(tc.want) {
				t.Fatalf("want %d finding(s), got %d:\n%s", len(tc.want), len(got), render(got))
			}
			for i, w := range tc.want {
				f := got[i]
				if f.Check != w.check || f.Severity != w.severity {
					t.Errorf("finding %d: want %s %s, got:\n%s", i, w.severity, w.check, f)
				}
				if text := f.Subject + " " + f.Problem + " " + f.Why; !strings.Contains(text, w.text) {
					t.Errorf("finding %d: want %q in:\n%s", i, w.text, f)
				}
				if !strings.Contains(f.Fix, w.fix) {
					t.Errorf("finding %d: want fix containing %q, got %q", i, w.fix, f.Fix)
				}
				if f.Why == "" {
					t.Errorf("finding %d has no why:\n%s", i, f)
				}
				if strings.Contains(f.String(), hookTok) {
					t.Errorf("finding %d prints the Discord token:\n%s", i, f)
				}
			}
		})
	}
}

func TestErrorsComeFirstAndFailOnlyOnErrors(t *testing.T) {
	cfg := good()
	cfg.DiscordWebhookURL = ""              // warning
	cfg.AllowedInvokers = []string{schedSA} // error
	fs := doctor.Run(cfg, daily(t))
	if len(fs) != 2 || fs[0].Severity != doctor.SeverityError || fs[1].Severity != doctor.SeverityWarning {
		t.Fatalf("want an error then a warning, got:\n%s", render(fs))
	}
	if !doctor.Failed(fs) {
		t.Error("Failed = false with an error")
	}
	if doctor.Failed(fs[1:]) {
		t.Error("Failed = true with only a warning")
	}
	if e, w := doctor.Count(fs); e != 1 || w != 1 {
		t.Errorf("Count = %d, %d; want 1, 1", e, w)
	}
}

func TestAttemptDeadline(t *testing.T) {
	d := daily(t)[0]
	if got := doctor.AttemptDeadline(d); got != 45*time.Second {
		t.Errorf("daily (one root): %s, want 45s", got)
	}
	wide := def("wide", "UTC")
	for i := range 200 {
		wide.Steps = append(wide.Steps, step(strings.Repeat("s", 1+i%60)+string(rune('a'+i%26)), time.Minute, 3))
	}
	if got := doctor.AttemptDeadline(wide); got != doctor.MaxAttemptDeadline {
		t.Errorf("200 roots: %s, want the cap %s", got, doctor.MaxAttemptDeadline)
	}
}
