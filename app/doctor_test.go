package app

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/doctor"
)

// gcpArgs is a deployment as the deploy scripts configure it.
func gcpArgs(extra ...string) []string {
	const tasks, sched = "pipeline-prod-tasks@acme.iam.gserviceaccount.com", "pipeline-prod-scheduler@acme.iam.gserviceaccount.com"
	return append([]string{
		"--file", repoPipelines, "--backend", "gcp", "--project", "acme",
		"--service-url", "https://pipeline-prod-abc123-ew.a.run.app", "--tasks-location", "europe-west1",
		"--tasks-service-account", tasks, "--allowed-invokers", tasks + "," + sched,
		"doctor", "--offline", "--service", "pipeline-prod", "--scheduler-service-account", sched,
		"--cloud-run-timeout", "1800s", "--queue-max-attempts", "25", "--scheduler-retries", "3",
		"--discord-url", "https://discord.com/api/webhooks/123456789012345678/tok_en-123",
	}, extra...)
}

func TestDoctorPassesAGoodDeployment(t *testing.T) {
	out, stderr, err := runArgs(t, gcpArgs()...)
	if err != nil || !strings.Contains(out, "0 error(s), 0 warning(s); backend gcp, pipelines daily") {
		t.Fatalf("err %v\n%s\n%s", err, out, stderr)
	}
}

func TestDoctorFailsOnErrorsWithFixes(t *testing.T) {
	out, _, err := runArgs(t, gcpArgs("--cloud-run-timeout", "60s", "--audience", "https://pipeline-prod-abc123-ew.a.run.app/")...)
	var ec exitCode
	if !errors.As(err, &ec) || ec.code != 1 {
		t.Fatalf("err = %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{
		"ERROR [audience]", "differ only by a trailing slash", "--remove-env-vars OIDC_AUDIENCE",
		"ERROR [deadlines] pipeline daily, step extract", "--timeout=",
		"4 error(s)", // the audience, and each of the 3 steps (timeout + 15 s > 60 s)
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDoctorWarningsPassUnlessStrict(t *testing.T) {
	args := gcpArgs("--scheduler-retries", "0", "--json")
	out, _, err := runArgs(t, args...)
	if err != nil {
		t.Fatalf("warnings failed the doctor: %v\n%s", err, out)
	}
	var rep struct {
		OK       bool
		Errors   int
		Warnings int
		Findings []struct{ Severity, Check, Problem, Why, Fix string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if !rep.OK || rep.Errors != 0 || rep.Warnings != 1 || rep.Findings[0].Severity != "warning" || rep.Findings[0].Check != "scheduler-retries" {
		t.Fatalf("report: %+v", rep)
	}
	_, _, err = runArgs(t, append(args, "--strict")...)
	var ec exitCode
	if !errors.As(err, &ec) || ec.code != 1 {
		t.Fatalf("--strict with a warning: err = %v, want exit 1", err)
	}
}

func TestSchedulesTSVAndJSON(t *testing.T) {
	out, _, err := runArgs(t, "--file", repoPipelines, "schedules")
	if err != nil || out != "daily\t0 6 * * *\tEurope/Paris\t45s\n" {
		t.Fatalf("tsv: %v %q", err, out)
	}
	out, _, err = runArgs(t, "--file", repoPipelines, "schedules", "--json")
	var list []doctor.Schedule
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 ||
		list[0] != (doctor.Schedule{Pipeline: "daily", Schedule: "0 6 * * *", TimeZone: "Europe/Paris", AttemptDeadlineSeconds: 45}) {
		t.Fatalf("json: %v %s", err, out)
	}
}

// TestDoctorGoesOnWhenPipelinesFailToLoad: a broken pipeline file is
// reported as findings at its line, and the configuration checks still run
// (here they find the trailing-slash audience) with the pipelines that loaded.
func TestDoctorGoesOnWhenPipelinesFailToLoad(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(bad, []byte("name: broken\nsteps:\n  - {name: a, kind: noop, timout: 5s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := gcpArgs("--audience", "https://pipeline-prod-abc123-ew.a.run.app/", "--json")
	args = append([]string{"--file", bad}, args...) // --file given twice: both files load
	out, stderr, err := runArgs(t, args...)
	var ec exitCode
	if !errors.As(err, &ec) || ec.code != 1 {
		t.Fatalf("err = %v, want exit 1\n%s\n%s", err, out, stderr)
	}
	var rep struct {
		OK        bool
		Pipelines []string
		Findings  []struct{ Severity, Check, Subject, Problem, Fix string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	var load, audience bool
	for _, f := range rep.Findings {
		switch f.Check {
		case "pipelines":
			load = f.Severity == "error" && f.Subject == bad+":3:27" && strings.Contains(f.Problem, `unknown key "timout" (did you mean "timeout"?)`) &&
				strings.Contains(f.Fix, "pipeline validate -f "+bad)
		case "audience":
			audience = true
		}
	}
	if rep.OK || !load || !audience || strings.Join(rep.Pipelines, ",") != "daily" {
		t.Fatalf("want the load problem, the audience finding and the daily pipeline checked; got %s", out)
	}
}

// The doctor lists the roles the asynchronous steps need (text and JSON)
// and checks their check intervals.
func TestDoctorListsAsyncRoles(t *testing.T) {
	file := filepath.Join(t.TempDir(), "waits.yaml")
	if err := os.WriteFile(file, []byte(`name: waits
time_zone: Europe/Paris
steps:
  - name: export
    kind: http
    timeout: 6h
    http: {url: "https://exports-123456789.europe-west1.run.app/start", async: true, audience: "https://exports-123456789.europe-west1.run.app", check_interval: 6h}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	args := gcpArgs("--runtime-service-account", "pipeline-prod-run@acme.iam.gserviceaccount.com")
	args[1] = file
	out, _, err := runArgs(t, args...)
	var ec exitCode
	if !errors.As(err, &ec) || ec.code != 1 {
		t.Fatalf("err = %v, want exit 1 (the interval)\n%s", err, out)
	}
	for _, want := range []string{
		"ERROR [check-interval] pipeline waits, step export: check interval 6h0m0s is not shorter than the step's timeout 6h0m0s",
		"IAM roles the asynchronous steps need",
		"pipeline waits, step export (http): roles/run.invoker on https://exports-123456789.europe-west1.run.app",
		"grant: gcloud run services add-iam-policy-binding exports --project 123456789 --region europe-west1 --member=serviceAccount:pipeline-prod-run@acme.iam.gserviceaccount.com --role=roles/run.invoker",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runArgs(t, append(args, "--json")...)
	var rep struct {
		AsyncRoles []doctor.Role `json:"async_roles"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.AsyncRoles) != 1 || rep.AsyncRoles[0].Role != "roles/run.invoker" {
		t.Fatalf("json: %v %+v\n%s", err, rep, out)
	}
}

// Every built-in asynchronous kind gets its roles listed and its check
// interval checked, through the stock registry.
func TestDoctorCoversEveryAsyncKind(t *testing.T) {
	file := filepath.Join(t.TempDir(), "nightly.yaml")
	if err := os.WriteFile(file, []byte(`name: nightly
time_zone: Europe/Paris
max_run_duration: 170h
steps:
  - name: load
    kind: cloudrun.job
    timeout: 6h
    cloudrun.job: {project: acme, region: europe-west1, job: nightly-load, check_interval: 5m}
  - name: merge
    kind: bigquery.query
    timeout: 168h
    bigquery.query: {project: acme-prod, location: EU, query: "SELECT 1", destination_table: sales.daily, check_interval: 10s}
  - name: export
    kind: http
    timeout: 1h
    http: {url: "https://exports.example/start", async: true}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	args := gcpArgs("--runtime-service-account", "pipeline-prod-run@acme.iam.gserviceaccount.com")
	args[1] = file
	out, _, err := runArgs(t, args...)
	if err != nil {
		t.Fatalf("err = %v (warnings only)\n%s", err, out)
	}
	const sa = "--member=serviceAccount:pipeline-prod-run@acme.iam.gserviceaccount.com"
	for _, want := range []string{
		"WARNING [check-interval] pipeline nightly, step merge: timeout 168h0m0s at a check every 10s is up to 60480 checks",
		"pipeline nightly, step load (cloudrun.job): roles/run.jobsExecutorWithOverrides on projects/acme/locations/europe-west1/jobs/nightly-load",
		"grant: gcloud run jobs add-iam-policy-binding nightly-load --project acme --region europe-west1 " + sa + " --role=roles/run.jobsExecutorWithOverrides",
		"grant: gcloud run jobs add-iam-policy-binding nightly-load --project acme --region europe-west1 " + sa + " --role=roles/run.viewer",
		"pipeline nightly, step load (cloudrun.job): roles/iam.serviceAccountUser on the service account of job projects/acme/locations/europe-west1/jobs/nightly-load",
		"gcloud run jobs describe nightly-load --project acme --region europe-west1",
		"pipeline nightly, step merge (bigquery.query): roles/bigquery.jobUser on project acme-prod",
		"grant: gcloud projects add-iam-policy-binding acme-prod " + sa + " --role=roles/bigquery.jobUser",
		"pipeline nightly, step merge (bigquery.query): roles/bigquery.dataEditor on acme-prod:sales",
		"grant: bq --project_id acme-prod add-iam-policy-binding " + sa + " --role=roles/bigquery.dataEditor acme-prod:sales",
		"0 error(s), 1 warning(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "step export (http)") {
		t.Errorf("a public async http step needs no role:\n%s", out)
	}
}
