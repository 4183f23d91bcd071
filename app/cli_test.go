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
	_, stderr, err := runArgs(t, "serve", "--backend", "cloud")
	if err == nil || !strings.Contains(stderr, "PIPELINE_BACKEND") {
		t.Fatalf("serve with a bad backend: %v %s", err, stderr)
	}
}
