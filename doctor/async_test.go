package doctor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"

	"github.com/pipelinehq/pipeline/doctor"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/steps"
)

// An asynchronous step's timeout bounds its wait, not a request: the doctor
// accepts hours for it and still rejects them for a synchronous step.
func TestDeadlinesOfAsynchronousSteps(t *testing.T) {
	async, err := steps.NewHTTP(map[string]any{"url": "https://jobs.example/start", "async": true})
	if err != nil {
		t.Fatal(err)
	}
	long := step("export", 6*time.Hour, 3)
	long.Kind, long.Body = "http", async
	if fs := doctor.Deadlines(good(), []*pipeline.Definition{def("nightly", "UTC", long)}); len(fs) != 0 {
		t.Fatalf("async step with a 6h timeout: %s", render(fs))
	}
	if d := doctor.TaskDeadline(long, 30*time.Second); d != pipeline.AsyncRequestTimeout+15*time.Second {
		t.Fatalf("task deadline of an async step = %s", d)
	}
	sync := step("load", 6*time.Hour, 3)
	fs := doctor.Deadlines(good(), []*pipeline.Definition{def("nightly", "UTC", sync)})
	if len(fs) == 0 || !strings.Contains(render(fs), "above Cloud Tasks' maximum") {
		t.Fatalf("sync step with a 6h timeout: %s", render(fs))
	}
}

// asyncHTTP is an async http step definition with the given settings.
func asyncHTTP(t *testing.T, name string, timeout time.Duration, settings map[string]any) *pipeline.StepDef {
	t.Helper()
	all := map[string]any{"url": "https://jobs.example/start", "async": true}
	for k, v := range settings {
		all[k] = v
	}
	body, err := steps.NewHTTP(all)
	if err != nil {
		t.Fatal(err)
	}
	return &pipeline.StepDef{Name: name, Kind: "http", Timeout: timeout, MaxAttempts: 3, Body: body}
}

// The doctor checks each asynchronous step's check interval: below the
// orchestrator's minimum (warning), not shorter than the timeout (error:
// never checked), more than 10,000 checks per wait (warning).
func TestCheckIntervals(t *testing.T) {
	cases := []struct {
		name     string
		timeout  time.Duration
		interval string
		want     []finding
	}{
		{"a sensible interval", 6 * time.Hour, "5m", nil},
		{"the default interval", 6 * time.Hour, "", nil},
		{"below the minimum", time.Hour, "500ms", []finding{{doctor.SeverityWarning, "check-interval", []string{"500ms is below the orchestrator's minimum 1s", "check_interval: 1s"}}}},
		{"as long as the timeout", time.Hour, "1h", []finding{{doctor.SeverityError, "check-interval", []string{"1h0m0s is not shorter than the step's timeout 1h0m0s", "fails every time", "say 36s"}}}},
		{"the default above a short timeout", 20 * time.Second, "", []finding{{doctor.SeverityError, "check-interval", []string{"30s is not shorter than the step's timeout 20s"}}}},
		{"too many checks", 168 * time.Hour, "10s", []finding{{doctor.SeverityWarning, "check-interval", []string{"up to 60480 checks per wait, above 10000", "check_interval: 1h40m48s"}}}},
		{"exactly 10,000 checks", 10000 * time.Second, "1s", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			settings := map[string]any{}
			if tc.interval != "" {
				settings["check_interval"] = tc.interval
			}
			s := asyncHTTP(t, "export", tc.timeout, settings)
			got := doctor.CheckIntervals(good(), []*pipeline.Definition{def("nightly", "Europe/Paris", s, step("load", time.Minute, 3))})
			match(t, got, tc.want...)
			if all := doctor.Run(good(), []*pipeline.Definition{def("nightly", "Europe/Paris", s)}); len(all) != len(tc.want) {
				t.Errorf("doctor.Run: %s", render(all))
			}
		})
	}
}

// grantingJob is an asynchronous kind of a binary of its own that names
// the roles its calls need.
type grantingJob struct{ steps.AsyncStep }

func (grantingJob) IAMGrants() []steps.IAMGrant {
	return []steps.IAMGrant{
		{Role: "roles/run.jobsExecutorWithOverrides", Resource: "projects/acme/locations/europe-west1/jobs/nightly-load", Why: "runs the job"},
		{Role: "roles/bigquery.dataEditor", Resource: "acme:sales", Why: "writes the table"},
	}
}

// plainAsync is an asynchronous kind that names no roles of its own.
type plainAsync struct{ steps.AsyncStep }

// The doctor lists the roles each asynchronous step needs, with the command
// that grants them: from the kind when it names them (a kind that names
// none, such as merge here, is not guessed by its name); a synchronous step
// or a public target needs none.
func TestAsyncRoles(t *testing.T) {
	const runtime = "pipeline-prod-run@acme.iam.gserviceaccount.com"
	cfg := good()
	cfg.RuntimeAccount = runtime
	private := asyncHTTP(t, "export", time.Hour, map[string]any{"audience": "https://exports-123456789.europe-west1.run.app"})
	hashed := asyncHTTP(t, "legacy", time.Hour, map[string]any{"audience": "https://exports-abc123-ew.a.run.app"})
	public := asyncHTTP(t, "public", time.Hour, nil)
	custom := &pipeline.StepDef{Name: "load", Kind: "acme.job", Timeout: time.Hour, MaxAttempts: 1, Body: grantingJob{public.Body.(steps.AsyncStep)}}
	byName := &pipeline.StepDef{Name: "merge", Kind: "bigquery.query", Timeout: time.Hour, MaxAttempts: 1, Body: plainAsync{public.Body.(steps.AsyncStep)}}
	sync := step("notify", time.Minute, 3)
	roles := doctor.AsyncRoles(cfg, []*pipeline.Definition{def("nightly", "UTC", private, hashed, public, custom, byName, sync)})
	var got []string
	for _, r := range roles {
		got = append(got, r.Step+" "+r.Role+" "+r.Fix)
	}
	want := []string{
		"export roles/run.invoker gcloud run services add-iam-policy-binding exports --project 123456789 --region europe-west1 --member=serviceAccount:" + runtime + " --role=roles/run.invoker",
		"legacy roles/run.invoker gcloud run services add-iam-policy-binding SERVICE --project PROJECT --region REGION --member=serviceAccount:" + runtime + " --role=roles/run.invoker   (SERVICE is the Cloud Run service at https://exports-abc123-ew.a.run.app)",
		"load roles/run.jobsExecutorWithOverrides gcloud run jobs add-iam-policy-binding nightly-load --project acme --region europe-west1 --member=serviceAccount:" + runtime + " --role=roles/run.jobsExecutorWithOverrides",
		"load roles/bigquery.dataEditor bq --project_id acme add-iam-policy-binding --member=serviceAccount:" + runtime + " --role=roles/bigquery.dataEditor acme:sales",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("roles:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Unknown runtime account: a placeholder in the command.
	if r := doctor.AsyncRoles(good(), []*pipeline.Definition{def("nightly", "UTC", private)}); len(r) != 1 || !strings.Contains(r[0].Fix, "serviceAccount:RUNTIME_SERVICE_ACCOUNT") {
		t.Fatalf("roles without a runtime account: %+v", r)
	}
}

// Online, the doctor reads the IAM policy of a private Cloud Run service an
// async step calls and reports a missing run.invoker of the runtime account.
func TestOnlineAsyncInvoker(t *testing.T) {
	const runtime = "pipeline-prod-run@acme.iam.gserviceaccount.com"
	const target = "projects/123456789/locations/europe-west1/services/exports"
	s := asyncHTTP(t, "export", time.Hour, map[string]any{"audience": "https://exports-123456789.europe-west1.run.app"})
	defs := append(daily(t), &pipeline.Definition{Name: "waits", TimeZone: "UTC", Steps: []*pipeline.StepDef{s}})
	cases := []struct {
		name    string
		members []string // nil: the service does not exist
		runtime string
		want    []finding
	}{
		{"granted", []string{"serviceAccount:" + runtime}, runtime, nil},
		{"missing", []string{"user:dev@acme.example"}, runtime, []finding{{doctor.SeverityError, "async-iam", []string{
			"serviceAccount:" + runtime + " (the service's runtime account) has no roles/run.invoker on https://exports-123456789.europe-west1.run.app",
			"gcloud run services add-iam-policy-binding exports --project 123456789 --region europe-west1 --member=serviceAccount:" + runtime + " --role=roles/run.invoker"}}}},
		{"target missing", nil, runtime, []finding{{doctor.SeverityError, "async-iam", []string{"does not exist", target}}}},
		{"runtime account unknown: listed, not checked", []string{"user:dev@acme.example"}, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := goodWorld()
			if tc.members != nil {
				w.policies[target] = &iampb.Policy{Bindings: []*iampb.Binding{{Role: invokerRole, Members: tc.members}}}
			}
			cfg := good()
			cfg.RuntimeAccount = tc.runtime
			match(t, doctor.Online{Cloud: standIn(t, w)}.Run(context.Background(), cfg, defs), tc.want...)
		})
	}
}
