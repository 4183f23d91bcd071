package app

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipelinehq/pipeline/steps"
)

func runArgs(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runCLI(context.Background(), args, newOptions([]Option{WithExampleSteps(), WithOutput(&out, &errOut)}))
	return out.String(), errOut.String(), err
}

// exampleSteps is what WithExampleSteps registers, for tests that build a
// Config by hand.
func exampleSteps() []func(*steps.Registry, *Config) {
	return []func(*steps.Registry, *Config){registerExampleSteps}
}

// repoPipelines is the example pipeline directory the README's command runs.
const repoPipelines = "../pipelines"

func TestRunTheExampleDailyChain(t *testing.T) {
	data := t.TempDir()
	out, stderr, err := runArgs(t, "run", "daily", "--file", repoPipelines, "--data", data, "--date", "2026-03-14", "--param", "rows=25")
	if err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out, stderr)
	}
	for _, want := range []string{"run daily@2026-03-14 started", "✓ extract", "✓ transform", "✓ report", "run daily@2026-03-14: succeeded", "STEP", "1/3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	report, err := os.ReadFile(filepath.Join(data, "files", "daily", "2026-03-14", "report.md"))
	if err != nil || !strings.Contains(string(report), "25 orders") {
		t.Fatalf("report: %v\n%s", err, report)
	}
	// The same date again is the same run: reported, not re-run.
	out, _, err = runArgs(t, "run", "daily", "--file", repoPipelines, "--data", data, "--date", "2026-03-14")
	if err != nil || !strings.Contains(out, "exists (succeeded)") || strings.Contains(out, "▸ extract") {
		t.Fatalf("second run: %v\n%s", err, out)
	}
}

func TestRunExitsNonZeroOnFailure(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	os.WriteFile(file, []byte(`
name: broken
steps:
  - {name: fetch, kind: http, max_attempts: 1, http: {url: "http://127.0.0.1:1/nothing"}}
`), 0o644)
	out, _, err := runArgs(t, "run", "--file", file, "--data", filepath.Join(dir, "data"), "--date", "2026-01-02")
	var ec exitCode
	if !errors.As(err, &ec) || ec.code != 1 {
		t.Fatalf("err = %v, want exit 1\n%s", err, out)
	}
	if !strings.Contains(out, "✗ fetch") || !strings.Contains(out, "failed") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	os.WriteFile(file, []byte(`
name: bad
time_zone: Nowhere/City
schedule: "61 * * * *"
steps:
  - {name: a, kind: shell}
  - {name: a, kind: noop, timeout: 5 minutes}
  - {name: b, kind: noop, after: [zz]}
`), 0o644)
	_, stderr, err := runArgs(t, "validate", "--file", file)
	var ec exitCode
	if !errors.As(err, &ec) || ec.code != 1 {
		t.Fatalf("err = %v, want exit 1", err)
	}
	if want := file + `:6:21: pipeline "bad": step 1 ("a"): unknown kind "shell"`; !strings.Contains(stderr, "\n"+want) {
		t.Errorf("stderr lacks a line starting %q:\n%s", want, stderr)
	}
	for _, want := range []string{"6 problem(s)", "Nowhere/City", "61 * * * *", `unknown kind "shell"`, "duplicate step name", `timeout "5 minutes"`, `unknown step "zz"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	out, _, err := runArgs(t, "validate", "--file", repoPipelines)
	if err != nil || !strings.Contains(out, "ok: 1 pipeline(s)") {
		t.Fatalf("validate examples: %v\n%s", err, out)
	}
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	c := Config{File: []string{"x"}, Backend: "gcp", Auth: "off", LogLevel: "loud", ServiceURL: "not a url"}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"SERVICE_URL", "GOOGLE_CLOUD_PROJECT", "CLOUD_TASKS_LOCATION", "TASKS_SERVICE_ACCOUNT", "PIPELINE_AUTH", "LOG_LEVEL", "PIPELINE_LEASE_GRACE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
	_, stderr, err := runArgs(t, "serve", "--backend", "cloud", "--file", repoPipelines, "--data", t.TempDir())
	if ExitCode(err) != ExitUsage || !strings.Contains(stderr, `PIPELINE_BACKEND: "cloud" is not local or gcp`) {
		t.Fatalf("serve with a bad backend: exit %d %v %s", ExitCode(err), err, stderr)
	}
}

// validate accepts a long timeout (up to 7 days) for an asynchronous step
// and refuses it beyond; a synchronous step of any kind longer than one Cloud
// Tasks delivery is valid (it runs locally) but warned about, as the doctor
// rejects it on gcp.
func TestValidateTimeoutsByKind(t *testing.T) {
	cases := []struct {
		name, step string
		fails      bool
		warns      bool
	}{
		{"async http 7 days", `{name: s, kind: http, timeout: 168h, http: {url: "https://jobs.example/x", async: true}}`, false, false},
		{"async http over 7 days", `{name: s, kind: http, timeout: 169h, http: {url: "https://jobs.example/x", async: true}}`, true, false},
		{"cloudrun.job 7 days", `{name: s, kind: cloudrun.job, timeout: 168h, cloudrun.job: {project: acme-prod, region: europe-west1, job: load}}`, false, false},
		{"cloudrun.job over 7 days", `{name: s, kind: cloudrun.job, timeout: 169h, cloudrun.job: {project: acme-prod, region: europe-west1, job: load}}`, true, false},
		{"bigquery.query 7 days", `{name: s, kind: bigquery.query, timeout: 168h, bigquery.query: {project: acme-prod, location: EU, query: "SELECT 1"}}`, false, false},
		{"bigquery.query over 7 days", `{name: s, kind: bigquery.query, timeout: 169h, bigquery.query: {project: acme-prod, location: EU, query: "SELECT 1"}}`, true, false},
		{"sync http 6 hours", `{name: s, kind: http, timeout: 6h, http: {url: "https://jobs.example/x"}}`, false, true},
		{"sync http 10 minutes", `{name: s, kind: http, timeout: 10m, http: {url: "https://jobs.example/x"}}`, false, false},
		{"noop 6 hours", `{name: s, kind: noop, timeout: 6h}`, false, true},
		{"sleep 6 hours", `{name: s, kind: sleep, timeout: 6h, sleep: {duration: 1s}}`, false, true},
		{"example.extract 6 hours", `{name: s, kind: example.extract, timeout: 6h}`, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "p.yaml")
			if err := os.WriteFile(file, []byte("name: p\ntime_zone: UTC\nsteps:\n  - "+tc.step+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			out, stderr, err := runArgs(t, "validate", "--file", file)
			if (err != nil) != tc.fails {
				t.Fatalf("err = %v, want failure %v\n%s%s", err, tc.fails, out, stderr)
			}
			if tc.fails && !strings.Contains(stderr, "above the 168h0m0s an asynchronous step may wait") {
				t.Fatalf("stderr:\n%s", stderr)
			}
			warned := strings.Contains(out, "warning: pipeline p, step s: timeout 6h0m0s needs a dispatch deadline") &&
				strings.Contains(out, "use an asynchronous kind")
			if warned != tc.warns {
				t.Fatalf("warned %v, want %v:\n%s", warned, tc.warns, out)
			}
		})
	}
}
